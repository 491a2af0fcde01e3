import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { AuthConfig } from '@gatehouse/config';
import { readOrCreateSecretFile, SecretFileError } from '@gatehouse/members';

export const TOKEN_ALGORITHM = 'ES256';

/**
 * The ES256 (P-256) key pair that signs registry tokens. Asymmetric, so a verifier holding only
 * the public key cannot mint tokens. `kid` is the RFC 7638 JWK thumbprint of the public key, so
 * rotating the key file changes it and old tokens are refused by signature.
 */
export class TokenSigningKey {
  private constructor(
    readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
    readonly kid: string,
  ) {}

  static async fromPem(pem: string, source = 'the signing key'): Promise<TokenSigningKey> {
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(pem);
    } catch (e) {
      throw new SecretFileError(
        `${source} is not a PEM private key (${(e as Error).message}). Fix: generate one with \`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256\``,
      );
    }
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    if (privateKey.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'P-256')) {
      throw new SecretFileError(
        `${source} must be an EC P-256 key for ES256 (found ${privateKey.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''}). Fix: \`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256\``,
      );
    }
    const publicKey = createPublicKey(privateKey);
    const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
    return new TokenSigningKey(privateKey, publicKey, kid);
  }

  static generatePem(): string {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  static async fromConfig(auth: AuthConfig): Promise<TokenSigningKey> {
    const pem = await readOrCreateSecretFile({
      path: auth.signingKeyFile,
      envName: 'TOKEN_SIGNING_KEY_FILE',
      fromEnv: auth.signingKeyFileFromEnv,
      generate: () => TokenSigningKey.generatePem(),
    });
    return TokenSigningKey.fromPem(pem, `TOKEN_SIGNING_KEY_FILE ${auth.signingKeyFile}`);
  }
}
