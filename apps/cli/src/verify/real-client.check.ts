import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail, pass, RowResult, shortDigest, skip } from './verify-result';
import { basicValue, VerifySession } from './verify-session';

export const CLIENT_ROW = 'real client';
const CLIENT_TIMEOUT_MS = 10 * 60 * 1000;

export interface ToolResult {
  /** null when the program is not installed. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; a missing program is `code: null`, not an exception. */
export function runTool(
  command: string,
  args: readonly string[],
  options: { stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${options.timeoutMs ?? CLIENT_TIMEOUT_MS} ms)`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? CLIENT_TIMEOUT_MS);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: err.code === 'ENOENT' ? null : 127, stdout, stderr: stderr || err.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
}

/** The last meaningful line of a client's error output, for the evidence column. */
export function lastErrorLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const last = lines[lines.length - 1] ?? '(no output)';
  // skopeo logs as `time="…" level=fatal msg="…"`: the message is what matters.
  const msg = /\bmsg="((?:[^"\\]|\\.)*)"/.exec(last)?.[1]?.replace(/\\(.)/g, '$1');
  return (msg ?? last).slice(0, 240);
}

/**
 * A real client pulls the entitled tag through the registry: skopeo copies every platform into an
 * OCI layout (credentials in a private auth file, not on the command line), or docker pulls with
 * a throw-away config. The digest it records must be the one the HTTP pull verified.
 */
export async function checkRealClient(s: VerifySession, run = runTool): Promise<RowResult> {
  if (!s.options.realClient) return skip(CLIENT_ROW, 'not asked (--no-client)');
  const host = s.options.url.host;
  const image = `${host}/${s.options.repository}:${s.options.tag}`;
  const tls = s.options.url.protocol === 'https:';
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-verify-oci-'));
  try {
    const version = await run('skopeo', ['--version'], { timeoutMs: 30_000 });
    if (version.code !== null) {
      const authFile = join(dir, 'auth.json');
      await writeFile(
        authFile,
        JSON.stringify({ auths: { [host]: { auth: basicValue(s.options.username, s.options.password) } } }),
        { mode: 0o600 },
      );
      const layout = join(dir, 'layout');
      const copy = await run('skopeo', [
        '--insecure-policy',
        'copy',
        '--all',
        '--preserve-digests',
        `--src-tls-verify=${tls}`,
        '--src-authfile',
        authFile,
        `docker://${image}`,
        `oci:${layout}:${s.options.tag}`,
      ]);
      const name = version.stdout.trim() || 'skopeo';
      if (copy.code !== 0)
        return fail(
          CLIENT_ROW,
          `${name} copy docker://${image} → exit ${copy.code}: ${lastErrorLine(copy.stderr)}`,
        );
      const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
        manifests?: Array<{ digest?: string }>;
      };
      const digest = index.manifests?.[0]?.digest ?? '';
      return compareDigest(s, `${name} copy --all docker://${image}`, digest);
    }
    const docker = await run('docker', ['--version'], { timeoutMs: 30_000 });
    if (docker.code === null) return skip(CLIENT_ROW, 'neither skopeo nor docker is installed here');
    const config = ['--config', join(dir, 'docker')];
    const login = await run(
      'docker',
      [...config, 'login', host, '-u', s.options.username, '--password-stdin'],
      {
        stdin: s.options.password,
      },
    );
    if (login.code !== 0)
      return fail(CLIENT_ROW, `docker login ${host} → exit ${login.code}: ${lastErrorLine(login.stderr)}`);
    const pull = await run('docker', [...config, 'pull', image]);
    if (pull.code !== 0)
      return fail(CLIENT_ROW, `docker pull ${image} → exit ${pull.code}: ${lastErrorLine(pull.stderr)}`);
    const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(pull.stdout)?.[1] ?? '';
    return compareDigest(s, `docker pull ${image}`, digest);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function compareDigest(s: VerifySession, what: string, digest: string): RowResult {
  const expected = s.state.pull?.digest;
  if (!digest) return fail(CLIENT_ROW, `${what} succeeded but recorded no digest`);
  if (expected && digest !== expected)
    return fail(CLIENT_ROW, `${what} → ${digest}, but the HTTP pull verified ${expected}`);
  const same = expected ? ', the digest the HTTP pull verified' : '';
  return pass(CLIENT_ROW, `${what} → ${shortDigest(digest)}${same}`);
}
