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
