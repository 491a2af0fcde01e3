import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** Loopback, private, link-local, shared, unspecified, multicast and reserved ranges. */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['2001:db8::', 32],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv6');

/** True for an address no public webhook receiver has (IPv4-mapped IPv6 judged as IPv4). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1], 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class WebhookTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookTargetError';
  }
}

/** The URL's shape: http(s), a host, no credentials, no fragment. Throws WebhookTargetError. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetError('the webhook URL is not a URL: give a full http(s):// URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new WebhookTargetError('the webhook URL must be http:// or https://');
  if (url.username || url.password)
    throw new WebhookTargetError(
      'the webhook URL must not hold credentials: the receiver checks the signature',
    );
  if (url.hash) throw new WebhookTargetError('the webhook URL must not have a #fragment');
  if (raw.length > 2048) throw new WebhookTargetError('the webhook URL is longer than 2048 characters');
  return url;
}

type Lookup = (hostname: string) => Promise<LookupAddress[]>;

const systemLookup: Lookup = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

/**
 * Refuses a URL whose host is or resolves to a private address (unless `allowPrivate`). Checked
 * when a subscription is made; `guardedLookup` checks again at every connection, so a name that
 * later resolves elsewhere (DNS rebinding) reaches nothing private either.
 */
export async function checkWebhookTarget(
  raw: string,
  allowPrivate: boolean,
  lookup: Lookup = systemLookup,
): Promise<URL> {
  const url = parseWebhookUrl(raw);
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host)).map((a) => a.address);
    } catch {
      throw new WebhookTargetError(`the webhook host ${host} does not resolve`);
    }
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad !== undefined)
    throw new WebhookTargetError(
      `the webhook host ${host} is a private, loopback or link-local address (${bad}); set EVENTS_ALLOW_PRIVATE_TARGETS=true to allow internal receivers`,
    );
  return url;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for the delivery sockets: private addresses fail the connection unless allowed. */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: object, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const usable = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (usable.length === 0) {
        const refused = new Error(`${hostname} resolves only to private addresses`) as NodeJS.ErrnoException;
        refused.code = 'EPRIVATETARGET';
        return callback(refused, []);
      }
      if ((options as { all?: boolean }).all) return callback(null, usable);
      return callback(null, usable[0].address, usable[0].family);
    });
  };
}
