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
