import { generateKeyPairSync, KeyObject, randomBytes, scryptSync, sign, verify } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { OCI_MANIFEST, pushBlob, pushManifest, PushedManifest } from './artifacts';
import { runCommand } from './clients';

/**
 * A sigstore (cosign) signing key pair in the files containers/image reads, made without cosign
 * (not installed, and not in Debian): the private key is an ECDSA P-256 PKCS#8 key encrypted as
 * go-tuf's `encrypted` package does it (scrypt N=32768 r=8 p=1, then NaCl secretbox), wrapped in
 * JSON and a PEM block of type `ENCRYPTED COSIGN PRIVATE KEY`; the public key is SPKI PEM.
 * `skopeo copy --sign-by-sigstore-private-key <privateKeyPath> --sign-passphrase-file
 * <passphrasePath>` signs with it; a `sigstoreSigned` policy with `keyPath: publicKeyPath`
 * verifies.
 */
export interface SigstoreKeyFiles {
  privateKeyPath: string;
  publicKeyPath: string;
  passphrasePath: string;
  /** The same private key, for the harness's own signer (see `pushSigstoreSignature`). */
  privateKey: KeyObject;
}

const SCRYPT = { N: 32768, r: 8, p: 1 };

export function encryptSigstorePrivateKey(pkcs8Der: Buffer, passphrase: string): string {
  const salt = randomBytes(32);
  const key = scryptSync(Buffer.from(passphrase), salt, 32, { ...SCRYPT, maxmem: 64 * 1024 * 1024 });
  const nonce = randomBytes(nacl.secretbox.nonceLength);
  const sealed = nacl.secretbox(new Uint8Array(pkcs8Der), new Uint8Array(nonce), new Uint8Array(key));
  const envelope = {
    kdf: { name: 'scrypt', params: SCRYPT, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  };
  const b64 = Buffer.from(JSON.stringify(envelope)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return [
    '-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----',
    ...lines,
    '-----END ENCRYPTED COSIGN PRIVATE KEY-----',
    '',
  ].join('\n');
}

export async function writeSigstoreKeyPair(
  dir: string,
  passphrase = 'gatehouse-test',
): Promise<SigstoreKeyFiles> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const files: SigstoreKeyFiles = {
    privateKeyPath: join(dir, 'sigstore.key'),
    publicKeyPath: join(dir, 'sigstore.pub'),
    passphrasePath: join(dir, 'sigstore.pass'),
    privateKey,
  };
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  await writeFile(files.privateKeyPath, encryptSigstorePrivateKey(der, passphrase), { mode: 0o600 });
  await writeFile(files.publicKeyPath, publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(files.passphrasePath, passphrase, { mode: 0o600 });
  return files;
}

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGSTORE_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

/**
 * The payload containers/image and cosign sign: which manifest digest, under which name.
 * `optional: null` is what cosign writes without user annotations.
 */
export function sigstorePayload(manifestDigest: string, dockerReference: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': manifestDigest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

/**
 * Pushes a sigstore signature of `manifestDigest` as a sigstore attachment, the layout
 * containers/image writes with `use-sigstore-attachments: true` and cosign writes too: an OCI
 * manifest at tag `sha256-<hex>.sig` whose layer is the payload, with the base64 ECDSA-SHA256
 * signature in the layer's `dev.cosignproject.cosign/signature` annotation.
 */
export async function pushSigstoreSignature(
  registryUrl: string,
  repository: string,
  manifestDigest: string,
  dockerReference: string,
  privateKey: KeyObject,
): Promise<PushedManifest> {
  const payload = sigstorePayload(manifestDigest, dockerReference);
  const signature = sign('sha256', payload, privateKey).toString('base64');
  const layer = await pushBlob(registryUrl, repository, payload);
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const configBlob = await pushBlob(registryUrl, repository, config);
  const tag = `sha256-${manifestDigest.slice('sha256:'.length)}.sig`;
  return pushManifest(registryUrl, repository, tag, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
    layers: [
      {
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        ...layer,
        annotations: { [SIGSTORE_SIGNATURE_ANNOTATION]: signature },
      },
    ],
  });
}

/**
 * Signs `registry/repository:tag` in the registry the way a vendor would: `skopeo copy
 * --sign-by-sigstore-private-key` with the encrypted key file when this skopeo can sign with
 * sigstore keys, else (Debian builds skopeo with sigstore signing disabled: "Debian-local
 * change: sigstore disabled"; podman's verification is built in) the harness's signer, which
 * writes the same attachment. Returns which one signed.
 */
export async function signInRegistry(options: {
  registryUrl: string;
  hostPort: string;
  repository: string;
  tag: string;
  manifestDigest: string;
  /** The name the signature vouches for (the one customers pull). */
  identity: string;
  key: SigstoreKeyFiles;
  registriesDir: string;
  env: NodeJS.ProcessEnv;
}): Promise<'skopeo' | 'harness'> {
  const ref = `docker://${options.hostPort}/${options.repository}:${options.tag}`;
  const r = await runCommand(
    'skopeo',
    [
      '--insecure-policy',
      '--registries.d',
      options.registriesDir,
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--sign-by-sigstore-private-key',
      options.key.privateKeyPath,
      '--sign-passphrase-file',
      options.key.passphrasePath,
      '--sign-identity',
      options.identity,
      ref,
      ref,
    ],
    { env: options.env },
  );
  if (r.code === 0) return 'skopeo';
  if (!/sigstore disabled/.test(r.stderr)) throw new Error(`skopeo signing ${ref} failed: ${r.stderr}`);
  await pushSigstoreSignature(
    options.registryUrl,
    options.repository,
    options.manifestDigest,
    options.identity,
    options.key.privateKey,
  );
  return 'harness';
}

/**
 * Checks a sigstore signature by containers/image's rules for a `sigstoreSigned` policy with a
 * key: the layer is a simple-signing payload, its annotation is a valid ECDSA-SHA256 signature of
 * the payload by `publicKeyPem`, and the payload vouches for `manifestDigest` under `identity`.
 * Returns the first rule broken, or null when the signature holds.
 */
export function sigstoreSignatureProblem(options: {
  layerMediaType: string;
  payload: Buffer;
  annotations: Record<string, string> | undefined;
  publicKeyPem: string;
  manifestDigest: string;
  identity: string;
}): string | null {
  if (options.layerMediaType !== SIMPLE_SIGNING_MEDIA_TYPE) return `layer is ${options.layerMediaType}`;
  const b64 = options.annotations?.[SIGSTORE_SIGNATURE_ANNOTATION];
  if (!b64) return 'no signature annotation';
  if (!verify('sha256', options.payload, options.publicKeyPem, Buffer.from(b64, 'base64')))
    return 'cryptographic signature verification failed';
  const critical = (
    JSON.parse(options.payload.toString()) as { critical?: Record<string, Record<string, string>> }
  ).critical;
  if (critical?.image?.['docker-manifest-digest'] !== options.manifestDigest) return 'signed digest differs';
  if (critical?.identity?.['docker-reference'] !== options.identity) return 'signed identity differs';
  return null;
}
