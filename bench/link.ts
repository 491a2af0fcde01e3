import { execFileSync } from 'node:child_process';

// A shaped link for the cold-path figure: a network namespace joined to the host by a veth pair,
// token-bucket (tbf) limited in both directions. The upstream registry runs inside the namespace,
// so the direct client and every middle process reach it across the same link. Only these two
// interfaces carry the traffic; the bench makes and removes both.

export interface ShapedLink {
  readonly name: string;
  readonly netns: string;
  /** The host's end. */
  readonly hostAddress: string;
  /** The namespace's end: the upstream listens here. */
  readonly upstreamAddress: string;
  remove(): void;
}

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });

/** `rateMbit` in Mbit/s; `index` keeps two links' names and addresses apart. */
export function makeShapedLink(rateMbit: number, index: number): ShapedLink {
  const netns = `ghbench${index}`;
  const host = `ghb${index}h`;
  const peer = `ghb${index}u`;
  const hostAddress = `10.231.${index}.1`;
  const upstreamAddress = `10.231.${index}.2`;
  removeQuietly(netns, host);
  // Bucket of 2 ms at the rate (at least 256 KiB: a timer tick must not starve it).
  const burst = Math.max(256 * 1024, Math.round((rateMbit * 1e6) / 8 / 500));
  const tbf = ['root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '20ms'];
  ip('netns', 'add', netns);
  try {
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', netns);
    ip('addr', 'add', `${hostAddress}/30`, 'dev', host);
    ip('link', 'set', host, 'up');
    ip('netns', 'exec', netns, 'ip', 'addr', 'add', `${upstreamAddress}/30`, 'dev', peer);
    ip('netns', 'exec', netns, 'ip', 'link', 'set', peer, 'up');
    ip('netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up');
    execFileSync('tc', ['qdisc', 'add', 'dev', host, ...tbf], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'exec', netns, 'tc', 'qdisc', 'add', 'dev', peer, ...tbf], {
      stdio: 'pipe',
    });
  } catch (error) {
    removeQuietly(netns, host);
    throw new Error(`could not make the shaped link (needs root, iproute2's ip and tc): ${String(error)}`);
  }
  return {
    name: rateMbit >= 1000 ? `${rateMbit / 1000} Gbit/s veth` : `${rateMbit} Mbit/s veth`,
    netns,
    hostAddress,
    upstreamAddress,
    remove: () => removeQuietly(netns, host),
  };
}

function removeQuietly(netns: string, host: string): void {
  // Deleting the namespace deletes the peer and with it the host's end.
  for (const args of [
    ['netns', 'del', netns],
    ['link', 'del', host],
  ]) {
    try {
      ip(...args);
    } catch {
      // not there
    }
  }
}
