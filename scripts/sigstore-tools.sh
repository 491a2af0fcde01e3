#!/usr/bin/env bash
# A skopeo built with sigstore enabled, for the signature tests, without installing anything
# system-wide. Debian bookworm's skopeo and podman are built with sigstore disabled
# ("Debian-local change: sigstore disabled"); Debian trixie's skopeo (1.18) signs with sigstore
# keys and verifies sigstoreSigned policies, and trixie packages cosign. This script downloads
# trixie's skopeo, cosign and the libraries they link against with apt (a private apt state: the
# machine's apt lists, cache and sources are not touched), unpacks them with dpkg-deb into
# .tmp/trixie-skopeo/root and runs them through that root's own dynamic loader.
#
#   scripts/sigstore-tools.sh fetch          fetch once (cached); prints the skopeo version
#   scripts/sigstore-tools.sh skopeo ARGS…   fetch if needed, then run trixie's skopeo
#   scripts/sigstore-tools.sh cosign ARGS…   the same for trixie's cosign (2.5)
#
# The mirror is the machine's own: the first URI of its apt sources (deb822 .sources files, else
# sources.list), with the suite swapped to trixie. When the tools cannot be had, one line on
# stderr says why and the exit status is 3.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
base="$repo/.tmp/trixie-skopeo"
root="$base/root"
lib="$root/usr/lib/x86_64-linux-gnu"
stamp="$base/ok"
packages=(skopeo cosign libc6 libgpgme11t64 libsqlite3-0 libassuan9 libgpg-error0)

fetched() { [ -x "$root/usr/bin/skopeo" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${packages[*]}" ]; }

fail() {
  echo "sigstore-tools: $*" >&2
  exit 3
}

mirror_uri() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk 'tolower($1) == "uris:" { print $2; exit }' "$f")
    # debian-security carries no trixie main suite; take the main archive's URI
    case "$uri" in *-security*) uri="" ;; esac
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
      /etc/apt/sources.list | grep -v -- -security | head -n1 || true)
  fi
  echo "$uri"
}

fetch() {
  fetched && return 0
  # test workers may start at once: one fetches, the others wait for it
  mkdir -p "$repo/.tmp"
  exec 9>"$repo/.tmp/trixie-skopeo.lock"
  command -v flock >/dev/null 2>&1 && flock 9
  fetched && return 0
  [ "$(uname -m)" = x86_64 ] || fail "needs an x86_64 machine (found $(uname -m))"
  command -v apt-get >/dev/null 2>&1 || fail "needs apt-get (a Debian machine) to download trixie's skopeo"
  command -v dpkg-deb >/dev/null 2>&1 || fail "needs dpkg-deb to unpack trixie's skopeo"
  local uri
  uri=$(mirror_uri)
  [ -n "$uri" ] || fail "no Debian mirror found in the machine's apt sources"
  rm -rf "$base"
  mkdir -p "$base/lists/partial" "$base/archives/partial" "$base/cache" "$root"
  echo "deb $uri trixie main" >"$base/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$base/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$base/lists" -o "Dir::Cache=$base/cache"
    -o "Dir::Cache::archives=$base/archives" -o Debug::NoLocking=1)
  # apt-get update exits 0 when the mirror cannot be reached: the lists it wrote tell
  apt-get -q "${opts[@]}" update >"$base/apt.log" 2>&1 || true
  compgen -G "$base/lists/*_Packages*" >/dev/null ||
    fail "no trixie package list from $uri: $(grep -v unsandboxed "$base/apt.log" | grep -E -A1 '^(E|Err|W):' | head -n2 | tr -s ' \n' ' ')"
  (cd "$base/archives" && apt-get -qq "${opts[@]}" download "${packages[@]}") >>"$base/apt.log" 2>&1 ||
    fail "apt-get download of trixie's ${packages[*]} failed: $(grep -E '^(E|Err):' "$base/apt.log" | head -n1)"
  local deb
  for deb in "$base"/archives/*.deb; do dpkg-deb -x "$deb" "$root"; done
  "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/bin/skopeo" --version >/dev/null 2>&1 ||
    fail "trixie's skopeo does not run on this machine"
  rm -rf "$base/lists" "$base/cache" "$base/archives"
  echo "${packages[*]}" >"$stamp"
  exec 9>&-
}

case "${1:-}" in
  fetch)
    fetch
    "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/bin/skopeo" --version
    ;;
  skopeo)
    shift
    fetch
    exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/bin/skopeo" "$@"
    ;;
  cosign)
    shift
    fetch
    exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/bin/cosign" "$@"
    ;;
  *)
    echo "usage: $0 fetch | skopeo ARGS... | cosign ARGS..." >&2
    exit 2
    ;;
esac
