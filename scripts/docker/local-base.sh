#!/usr/bin/env bash
# Makes a local stand-in for node:20-bookworm-slim when the engine cannot pull it (no Docker Hub):
# a Debian bookworm minbase rootfs (debootstrap, from this machine's Debian mirror) plus this
# machine's Node.js 20 and npm, imported into the engine as gatehouse-base:node<version>-bookworm.
# The rootfs tarball is cached under .tmp/docker-base/, so only the first run pays for debootstrap.
# Prints the image tag on stdout; progress goes to stderr. Needs root (debootstrap chroots).
#   DOCKER          the docker client (default: docker)
#   DEBIAN_MIRROR   the Debian mirror (default: the first one in this machine's apt sources)
set -euo pipefail
cd "$(dirname "$0")/../.."
DOCKER=${DOCKER:-docker}
# Bump when the recipe below changes, so a stale cached rootfs is not reused.
RECIPE=1

node_bin=$(command -v node)
node_version=$(node -p 'process.versions.node')
case "$node_version" in
  20.*) ;;
  *) echo "local-base: this machine's Node.js is $node_version; the image needs Node.js 20" >&2; exit 1 ;;
esac
tag="gatehouse-base:node${node_version}-bookworm"
if $DOCKER image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

cache_dir=.tmp/docker-base
tarball="$cache_dir/node${node_version}-bookworm-r${RECIPE}.tar"
mkdir -p "$cache_dir"

if [ ! -f "$tarball" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "local-base: building the base rootfs needs root (debootstrap); run as root or set BASE_IMAGE to an image the engine has" >&2
    exit 1
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    echo "local-base: debootstrap is missing: apt-get install debootstrap (bash scripts/setup.sh does)" >&2
    exit 1
  }
  mirror=${DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    # The machine's own mirror: the first non-security URI of its apt sources.
    mirror=$( (grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
               grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}') | grep -v security | head -n1 || true)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs="$cache_dir/rootfs.$$"
  rm -rf "$rootfs"
  trap 'rm -rf "$rootfs"' EXIT
  echo "local-base: debootstrap bookworm (minbase) from $mirror" >&2
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1; then
    echo "local-base: debootstrap failed: $(tail -n1 "$cache_dir/debootstrap.log")" >&2
    exit 1
  fi
  # Node and npm where the official node images keep them.
  install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # Trust what this machine trusts (a TLS-inspecting proxy in front of the npm registry, say):
  # the image is built on this machine, and its npm ci goes through the same network.
  ca=$(npm config get cafile 2>/dev/null || true)
  [ -n "$ca" ] && [ "$ca" != "null" ] && [ -f "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
  if [ -f "$ca" ]; then
    mkdir -p "$rootfs/etc/ssl/certs"
    cp "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  fi
  # What the slim images drop too: documentation, locales, apt caches.
  rm -rf "$rootfs"/usr/share/{doc,man,info,locale}/* "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
  if ! chroot "$rootfs" /usr/local/bin/node -e 'process.exit(0)'; then
    echo "local-base: this machine's node does not run inside the bookworm rootfs" >&2
    exit 1
  fi
  tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$rootfs"
  trap - EXIT
fi

echo "local-base: importing $tarball as $tag" >&2
$DOCKER import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  "$tarball" "$tag" >/dev/null
echo "$tag"
