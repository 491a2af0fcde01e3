import { CredentialOriginPolicy } from './credential-origin.policy';

describe('CredentialOriginPolicy', () => {
  it('sends credentials to the base origin and admitted realms only', () => {
    const p = new CredentialOriginPolicy('https://git.example.com/');
    expect(p.mayReceiveCredentials('https://git.example.com/v2/token')).toBe(true);
    expect(p.mayReceiveCredentials('https://auth.example.com/token')).toBe(false);
    expect(p.admitRealm('https://auth.example.com/token')).toEqual({
      ok: true,
      origin: 'https://auth.example.com',
    });
    expect(p.mayReceiveCredentials('https://auth.example.com/other')).toBe(true);
    expect(p.mayReceiveCredentials('https://auth.example.com:8443/token')).toBe(false);
  });

  it('never gives registry tokens to a storage or realm origin', () => {
    const p = new CredentialOriginPolicy('http://127.0.0.1:3000');
    p.admitRealm('http://127.0.0.1:4000/token');
    expect(p.mayReceiveRegistryToken('http://127.0.0.1:3000/v2/a/b/blobs/x')).toBe(true);
    expect(p.mayReceiveRegistryToken('http://127.0.0.1:4000/token')).toBe(false);
    expect(p.mayReceiveRegistryToken('http://127.0.0.1:9000/bucket/obj?X-Amz-Signature=1')).toBe(false);
    expect(p.mayReceiveRegistryToken('https://127.0.0.1:3000/v2/')).toBe(false);
  });

  it.each([
    ['http://auth.example.com/token', /plain http/],
    ['ftp://git.example.com/token', /ftp/],
    ['not a url', /absolute/],
    ['https://u:p@auth.example.com/token', /user info/],
  ])('refuses the realm %s', (realm, why) => {
    const p = new CredentialOriginPolicy('https://git.example.com');
    const r = p.admitRealm(realm);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.why).toMatch(why);
    expect(p.mayReceiveCredentials(realm.startsWith('http') ? realm : 'https://x/')).toBe(false);
  });

  it('allows a plain-http realm on the same origin as a plain-http base', () => {
    const p = new CredentialOriginPolicy('http://127.0.0.1:3000');
    expect(p.admitRealm('http://127.0.0.1:3000/v2/token').ok).toBe(true);
  });
});
