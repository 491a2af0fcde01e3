import proxyaddr from '@fastify/proxy-addr';

/**
 * Turns TRUST_PROXY into what proxy-addr (Fastify's trustProxy) understands. "private" is our
 * shorthand for the RFC 1918 and unique-local ranges a reverse proxy usually sits in.
 */
export function trustProxyList(entries: string[]): string[] | false {
  if (entries.length === 0) return false;
  return entries.flatMap((e) =>
    e === 'private' ? ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'] : [e],
  );
}

/** Whether a socket's peer address is in TRUST_PROXY, with Fastify's own matcher (proxy-addr). */
export function trustedPeer(entries: string[]): (address: string) => boolean {
  const list = trustProxyList(entries);
  if (list === false) return () => false;
  const trust = proxyaddr.compile(list);
  return (address) => trust(address, 0);
}
