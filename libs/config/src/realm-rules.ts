/**
 * Rules for the advertised token realm (OCI_REGISTRY_REALM).
 *
 * The realm is copied verbatim into a quoted `WWW-Authenticate` parameter, so a quote or a
 * control character would let the value break out of the header; anything but an absolute
 * http(s) URL is unusable by clients. Both are refused at start.
 */
export function realmProblem(realm: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(realm)) return 'OCI_REGISTRY_REALM contains a control character';
  if (/["'\\]/.test(realm)) return 'OCI_REGISTRY_REALM contains a quote or backslash';
  if (/\s/.test(realm)) return 'OCI_REGISTRY_REALM contains white space';
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    return `OCI_REGISTRY_REALM is not a URL ("${realm.slice(0, 80)}")`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `OCI_REGISTRY_REALM must be an http or https URL, not ${url.protocol}`;
  }
  if (!url.hostname) return 'OCI_REGISTRY_REALM has no host';
  if (url.username || url.password) return 'OCI_REGISTRY_REALM must not contain credentials';
  return null;
}

/** The host (without port) of a `host[:port]` service name. */
export function serviceHost(service: string): string {
  return service.replace(/:\d+$/, '').toLowerCase();
}

/**
 * A realm on another host than the service is legal (a separate auth host) but is the most
 * common cause of "login works, pull fails" behind proxies, so it is worth a warning.
 */
export function realmHostWarning(realm: string, service: string): string | null {
  const realmHost = new URL(realm).hostname.toLowerCase();
  const host = serviceHost(service);
  if (realmHost === host) return null;
  return `OCI_REGISTRY_REALM host "${realmHost}" differs from OCI_REGISTRY_SERVICE host "${host}": clients will send credentials to ${realmHost}. This is right only if that host serves this gateway's /auth/token; otherwise set OCI_REGISTRY_REALM to https://${service}/auth/token or unset it.`;
}

export interface ListenerFacts {
  realm: string;
  service: string;
  /** The gateway's own listener: plain HTTP on HOST:PORT. */
  host: string;
  port: number;
  /** TRUST_PROXY is set: a proxy in front may terminate TLS and map ports. */
  behindProxy: boolean;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/**
 * The gateway itself speaks plain HTTP on HOST:PORT. Without a proxy in front (TRUST_PROXY unset)
 * an https realm cannot be this gateway, and `docker login` fails with "server gave HTTP response
 * to HTTPS client". Listening on loopback only, a realm on another host or port cannot be it
 * either. On other addresses a port mapping (docker's `-p 18081:8080`) may change the port, so
 * a different port alone is not a warning there. Worth a warning at start naming the variables
 * and the fix.
 */
export function realmListenerWarning(facts: ListenerFacts): string | null {
  if (facts.behindProxy) return null;
  const url = new URL(facts.realm);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const problems: string[] = [];
  if (url.protocol === 'https:') problems.push('it is https but this gateway serves plain http');
  if (LOOPBACK.test(facts.host)) {
    if (port !== facts.port) problems.push(`its port ${port} is not this gateway's PORT ${facts.port}`);
    if (!LOOPBACK.test(url.hostname))
      problems.push(`this gateway listens on ${facts.host} only, which ${url.hostname} cannot be`);
  }
  if (problems.length === 0) return null;
  return `OCI_REGISTRY_REALM ${facts.realm} (from OCI_REGISTRY_REALM, or https://OCI_REGISTRY_SERVICE/auth/token when unset) cannot be this gateway's own listener http://${facts.host}:${facts.port}: ${problems.join('; ')}, and TRUST_PROXY is unset so no proxy is expected in front. Clients will fail to log in (docker: "server gave HTTP response to HTTPS client"). Fix: for a local check set OCI_REGISTRY_REALM=http://${facts.service}/auth/token (OCI_REGISTRY_SERVICE=${facts.service}); in production put a TLS proxy in front and set TRUST_PROXY to its address.`;
}
