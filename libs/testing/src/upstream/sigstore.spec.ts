import { createPrivateKey, createPublicKey, scryptSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import {
  SIMPLE_SIGNING_MEDIA_TYPE,
  SIGSTORE_SIGNATURE_ANNOTATION,
  sigstorePayload,
  sigstoreSignatureProblem,
  writeSigstoreKeyPair,
} from './sigstore';

/** go-tuf's `encrypted.Decrypt`, which containers/image's `loadPrivateKey` calls, step by step. */
function decryptAsContainersImage(pem: string, passphrase: string): Buffer {
  const m =
    /^-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n([\s\S]+?)\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n$/.exec(
      pem,
    );
  if (!m) throw new Error('not an ENCRYPTED COSIGN PRIVATE KEY PEM block');
  const data = JSON.parse(Buffer.from(m[1].replace(/\n/g, ''), 'base64').toString()) as {
    kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
    cipher: { name: string; nonce: string };
    ciphertext: string;
  };
  expect(data.kdf.name).toBe('scrypt');
  expect(data.cipher.name).toBe('nacl/secretbox');
  expect(data.kdf.params).toEqual({ N: 32768, r: 8, p: 1 }); // CheckParams refuses anything else
  const key = scryptSync(Buffer.from(passphrase), Buffer.from(data.kdf.salt, 'base64'), 32, {
    N: 32768,
    r: 8,
    p: 1,
    maxmem: 64 * 1024 * 1024,
  });
  const nonce = Buffer.from(data.cipher.nonce, 'base64');
  expect(nonce.length).toBe(24);
  const opened = nacl.secretbox.open(
    new Uint8Array(Buffer.from(data.ciphertext, 'base64')),
    new Uint8Array(nonce),
    new Uint8Array(key),
  );
  if (!opened) throw new Error('encrypted: decryption failed');
  return Buffer.from(opened);
}

describe('sigstore test keys and signatures', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-sigstore-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes a private key that decrypts as containers/image decrypts it, to the pair of the public key', async () => {
    const files = await writeSigstoreKeyPair(dir, 'pass phrase');
    const pem = await readFile(files.privateKeyPath, 'utf8');
    const der = decryptAsContainersImage(pem, 'pass phrase');
    const priv = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    expect(priv.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const pub = createPublicKey(await readFile(files.publicKeyPath, 'utf8'));
    expect(createPublicKey(priv).export({ type: 'spki', format: 'pem' })).toBe(
      pub.export({ type: 'spki', format: 'pem' }),
    );
    expect(() => decryptAsContainersImage(pem, 'wrong')).toThrow('decryption failed');
  });

  it('checks a signature by the policy rules: key, payload digest and identity', async () => {
    const files = await writeSigstoreKeyPair(dir);
    const publicKeyPem = await readFile(files.publicKeyPath, 'utf8');
    const digest = `sha256:${'a'.repeat(64)}`;
    const identity = 'gw.example:5000/acme/app:v1';
    const payload = sigstorePayload(digest, identity);
    const signature = sign('sha256', payload, files.privateKey);
    const check = (over: Partial<Parameters<typeof sigstoreSignatureProblem>[0]> = {}) =>
      sigstoreSignatureProblem({
        layerMediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        payload,
        annotations: { [SIGSTORE_SIGNATURE_ANNOTATION]: signature.toString('base64') },
        publicKeyPem,
        manifestDigest: digest,
        identity,
        ...over,
      });
    expect(check()).toBeNull();
    const flipped = Buffer.from(signature);
    flipped[flipped.length - 1] ^= 1;
    expect(check({ annotations: { [SIGSTORE_SIGNATURE_ANNOTATION]: flipped.toString('base64') } })).toBe(
      'cryptographic signature verification failed',
    );
    expect(check({ manifestDigest: `sha256:${'b'.repeat(64)}` })).toBe('signed digest differs');
    expect(check({ identity: 'gw.example:5000/acme/other:v1' })).toBe('signed identity differs');
    expect(check({ annotations: {} })).toBe('no signature annotation');
  });
});
