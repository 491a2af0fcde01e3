import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandResult, runCommand, RunOptions } from './clients';

const SCRIPT = join(__dirname, '../../../../scripts/sigstore-tools.sh');

/**
 * A skopeo that signs and verifies sigstore signatures, and cosign: Debian trixie's (skopeo
 * 1.18, cosign 2.5), which `scripts/sigstore-tools.sh` downloads and unpacks into the
 * repository's .tmp/ once, since bookworm's skopeo 1.9.3 and podman 4.3.1 are built with
 * sigstore disabled and bookworm has no cosign. skopeo's verification is containers/image's own:
 * `copy --policy` with a `sigstoreSigned` requirement and registries.d
 * `use-sigstore-attachments: true`, the code podman and CRI-O run on a pull.
 */
export interface SigstoreTools {
  /** `skopeo version 1.18.0` */
  readonly version: string;
  skopeo(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  cosign(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** Fetches the tools on first use; throws with the script's one line when they cannot be had. */
export async function sigstoreTools(): Promise<SigstoreTools> {
  const fetched = await runCommand('bash', [SCRIPT, 'fetch'], { timeoutMs: 300_000 });
  if (fetched.code !== 0) {
    const lines = fetched.stderr.trim().split('\n');
    throw new Error(lines[lines.length - 1] || `scripts/sigstore-tools.sh fetch exited ${fetched.code}`);
  }
  return {
    version: fetched.stdout.trim(),
    skopeo: (args, options) => runCommand('bash', [SCRIPT, 'skopeo', ...args], options),
    cosign: (args, options) => runCommand('bash', [SCRIPT, 'cosign', ...args], options),
  };
}

/** A sigstore key pair made by `skopeo generate-sigstore-key` (cosign's encrypted key format). */
export interface SigstoreKeyFiles {
  privateKeyPath: string;
  publicKeyPath: string;
  passphrasePath: string;
}

export async function generateSigstoreKey(
  sigstore: SigstoreTools,
  dir: string,
  options: { env: NodeJS.ProcessEnv; passphrase?: string },
): Promise<SigstoreKeyFiles> {
  const prefix = join(dir, 'sigstore');
  const files: SigstoreKeyFiles = {
    privateKeyPath: `${prefix}.private`,
    publicKeyPath: `${prefix}.pub`,
    passphrasePath: `${prefix}.pass`,
  };
  await writeFile(files.passphrasePath, options.passphrase ?? 'gatehouse-test', { mode: 0o600 });
  const r = await sigstore.skopeo(
    ['generate-sigstore-key', '--output-prefix', prefix, '--passphrase-file', files.passphrasePath],
    { env: options.env },
  );
  if (r.code !== 0) throw new Error(`skopeo generate-sigstore-key failed: ${r.stderr.trim()}`);
  return files;
}

export const SIGSTORE_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

/**
 * Signs `hostPort/repository:tag` in the registry the way a vendor would: `skopeo copy
 * --sign-by-sigstore-private-key` onto itself, with `registriesDir` saying
 * `use-sigstore-attachments: true` for that registry, so the signature lands as the attachment
 * at tag `sha256-<hex>.sig`. `--all` keeps an index whole (without it skopeo would replace the
 * tag with one platform's manifest), and the index's digest is the one signed. `identity` is the
 * name the signature vouches for.
 */
export async function signInRegistry(
  sigstore: SigstoreTools,
  options: {
    hostPort: string;
    repository: string;
    tag: string;
    identity: string;
    key: SigstoreKeyFiles;
    registriesDir: string;
    env: NodeJS.ProcessEnv;
  },
): Promise<void> {
  const ref = `docker://${options.hostPort}/${options.repository}:${options.tag}`;
  const r = await sigstore.skopeo(
    [
      '--insecure-policy',
      '--registries.d',
      options.registriesDir,
      'copy',
      '--all',
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
  if (r.code !== 0) throw new Error(`skopeo signing ${ref} failed: ${r.stderr.trim()}`);
}
