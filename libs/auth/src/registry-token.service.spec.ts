import { createHmac, randomUUID } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import { RegistryTokenService, TokenRejection, TokenVerificationError } from './registry-token.service';
import { repositoryPullScope } from './scope.util';
import { TokenSigningKey } from './token-signing-key';

class FakeClock extends Clock {
  ms = Date.UTC(2026, 0, 1);
  override now(): number {
    return this.ms;
  }
}

const config = {
  auth: { tokenTtlSeconds: 300, issuer: 'gatehouse' },
  registry: { service: 'registry.example.com' },
} as unknown as GatewayConfig;
const subject = { memberId: randomUUID(), username: 'alice', accessKeyId: randomUUID() };

let key: TokenSigningKey;
let otherKey: TokenSigningKey;
beforeAll(async () => {
  key = await TokenSigningKey.fromPem(TokenSigningKey.generatePem());
  otherKey = await TokenSigningKey.fromPem(TokenSigningKey.generatePem());
});

function service(clock = new FakeClock(), signingKey = key, cfg = config): RegistryTokenService {
  return new RegistryTokenService(signingKey, cfg, clock);
}

async function rejection(promise: Promise<unknown>): Promise<TokenRejection> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof TokenVerificationError) return e.reason;
    throw e;
  }
  throw new Error('the token was accepted');
}

/** A hand-made token with our claims, for the forgery cases. */
function claims(clock: FakeClock, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(clock.ms / 1000);
  return {
    iss: 'gatehouse',
    sub: subject.memberId,
    aud: 'registry.example.com',
    iat,
    nbf: iat,
    exp: iat + 300,
    jti: randomUUID(),
    username: 'alice',
    akid: subject.accessKeyId,
    token_use: 'access',
    access: [repositoryPullScope('acme/app')],
    ...overrides,
  };
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('RegistryTokenService', () => {
  it('round-trips an access token with the Docker access claim', async () => {
    const clock = new FakeClock();
    const s = service(clock);
    const signed = await s.signAccessToken(subject, [repositoryPullScope('acme/app')]);
    expect(signed.expiresIn).toBe(300);
    const header = JSON.parse(Buffer.from(signed.token.split('.')[0], 'base64url').toString());
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.kid });
    const payload = JSON.parse(Buffer.from(signed.token.split('.')[1], 'base64url').toString());
    expect(payload).toMatchObject({
      iss: 'gatehouse',
      sub: subject.memberId,
      aud: 'registry.example.com',
      username: 'alice',
      akid: subject.accessKeyId,
    });
    expect(payload.exp - payload.iat).toBe(300);
    expect(typeof payload.jti).toBe('string');
    const verified = await s.verify(signed.token, 'access');
    expect(verified).toMatchObject({ ...subject, access: [repositoryPullScope('acme/app')] });
  });

  it('tolerates a small clock skew', async () => {
    const clock = new FakeClock();
    const signed = await service(clock).signAccessToken(subject, []);
    clock.ms -= 20_000; // verifier 20 s behind the signer: nbf is in its future, within skew
    await expect(service(clock).verify(signed.token, 'access')).resolves.toBeTruthy();
  });

  it('answers a repeated access token from memory only inside its time window', async () => {
    const clock = new FakeClock();
    const s = service(clock);
    const signed = await s.signAccessToken(subject, [repositoryPullScope('acme/app')]);
    const first = await s.verify(signed.token, 'access');
    clock.ms += 200_000;
    await expect(s.verify(signed.token, 'access')).resolves.toBe(first);
    // Still refused as a refresh token, and a tampered copy is never taken from memory.
    expect(await rejection(s.verify(signed.token, 'refresh'))).toBe('token_use');
    const [h, p, sig] = signed.token.split('.');
    const flipped = `${h}.${p}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(await rejection(s.verify(flipped, 'access'))).toBe('token_signature');
    // Past exp + skew the cached answer is gone and the full check says why.
    clock.ms += 100_000 + 31_000;
    expect(await rejection(s.verify(signed.token, 'access'))).toBe('token_expired');
    // A clock set back before nbf - skew is refused too.
    const again = await s.signAccessToken(subject, []);
    await s.verify(again.token, 'access');
    clock.ms -= 40_000;
    expect(await rejection(s.verify(again.token, 'access'))).toBe('token_not_yet_valid');
  });

  it('caps a refresh token at its key expiry', async () => {
    const clock = new FakeClock();
    const signed = await service(clock).signRefreshToken(subject, new Date(clock.ms + 3_600_000));
    expect(signed.expiresIn).toBe(3600);
    await expect(service(clock).verify(signed.token, 'refresh')).resolves.toMatchObject(subject);
  });

  describe('refuses', () => {
    it.each<[string, (clock: FakeClock) => Promise<string>, TokenRejection]>([
      [
        'an expired token',
        async (clock) => {
          const t = (await service(clock).signAccessToken(subject, [])).token;
          clock.ms += 331_000;
          return t;
        },
        'token_expired',
      ],
      [
        'a token not yet valid (nbf beyond the skew)',
        async (clock) =>
          new SignJWT(claims(clock, { nbf: Math.floor(clock.ms / 1000) + 120 }))
            .setProtectedHeader({ alg: 'ES256' })
            .sign(key.privateKey),
        'token_not_yet_valid',
      ],
      [
        'another audience',
        async (clock) =>
          (
            await service(clock, key, {
              ...config,
              registry: { service: 'other.example.com' },
            } as unknown as GatewayConfig).signAccessToken(subject, [])
          ).token,
        'token_audience',
      ],
      [
        'another issuer',
        async (clock) =>
          new SignJWT(claims(clock, { iss: 'someone-else' }))
            .setProtectedHeader({ alg: 'ES256' })
            .sign(key.privateKey),
        'token_issuer',
      ],
      [
        'another signing key',
        async (clock) => (await service(clock, otherKey).signAccessToken(subject, [])).token,
        'token_signature',
      ],
      ['alg=none', async (clock) => new UnsecuredJWT(claims(clock)).encode(), 'token_algorithm'],
      [
        'HS256 keyed with the public key',
        async (clock) => {
          const pem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
          const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims(clock))}`;
          return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
        },
        'token_algorithm',
      ],
      [
        'a tampered payload',
        async (clock) => {
          const [h, , s] = (await service(clock).signAccessToken(subject, [])).token.split('.');
          return `${h}.${b64(claims(clock, { access: [repositoryPullScope('acme/secret')] }))}.${s}`;
        },
        'token_signature',
      ],
      [
        'a refresh token used as an access token',
        async (clock) => (await service(clock).signRefreshToken(subject, null)).token,
        'token_use',
      ],
      [
        'a token without a jti',
        async (clock) =>
          new SignJWT(claims(clock, { jti: undefined }))
            .setProtectedHeader({ alg: 'ES256' })
            .sign(key.privateKey),
        'token_claims',
      ],
      ['garbage', async () => 'not.a.jwt', 'token_malformed'],
    ])('%s', async (_label, make, reason) => {
      const clock = new FakeClock();
      const token = await make(clock);
      expect(await rejection(service(clock).verify(token, 'access'))).toBe(reason);
    });

    it('an access token used as a refresh token', async () => {
      const clock = new FakeClock();
      const token = (await service(clock).signAccessToken(subject, [])).token;
      expect(await rejection(service(clock).verify(token, 'refresh'))).toBe('token_use');
    });
  });
});
