import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, TempDir } from './tmp';
import { trackChild } from './process-registry';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command to completion and never throws on a non-zero exit: tests assert on `code`. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${options.timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/**
 * A throw-away HOME/XDG tree plus registries.conf and containers.conf, so skopeo and podman
 * read no auth file, policy or storage of the machine and leave nothing behind.
 */
export interface ContainerToolsSandbox {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** `skopeo --insecure-policy <args>` */
  skopeo(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** `podman` with root, runroot, tmpdir under the sandbox, vfs storage, file events, cgroupfs */
  podman(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  cleanup(): Promise<void>;
}

export async function createContainerToolsSandbox(): Promise<ContainerToolsSandbox> {
  const tmp: TempDir = await makeTempDir('containers');
  const dir = tmp.path;
  const p = (...parts: string[]): string => join(dir, ...parts);
  for (const d of ['home', 'runtime', 'config', 'data', 'cache', 'root', 'runroot', 'tmp'])
    await mkdir(p(d), { recursive: true, mode: 0o700 });
  await writeFile(p('policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  await writeFile(p('auth.json'), JSON.stringify({ auths: {} }));
  await writeFile(p('registries.conf'), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
  await writeFile(
    p('containers.conf'),
    ['[engine]', 'events_logger = "file"', 'cgroup_manager = "cgroupfs"', `tmp_dir = "${p('tmp')}"`, ''].join(
      '\n',
    ),
  );
  await writeFile(
    p('storage.conf'),
    ['[storage]', 'driver = "vfs"', `runroot = "${p('runroot')}"`, `graphroot = "${p('root')}"`, ''].join(
      '\n',
    ),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: p('home'),
    XDG_RUNTIME_DIR: p('runtime'),
    XDG_CONFIG_HOME: p('config'),
    XDG_DATA_HOME: p('data'),
    XDG_CACHE_HOME: p('cache'),
    TMPDIR: p('tmp'),
    REGISTRY_AUTH_FILE: p('auth.json'),
    CONTAINERS_REGISTRIES_CONF: p('registries.conf'),
    CONTAINERS_CONF: p('containers.conf'),
    CONTAINERS_STORAGE_CONF: p('storage.conf'),
  };
  return {
    dir,
    env,
    skopeo: (args, options) => runCommand('skopeo', ['--insecure-policy', ...args], { ...options, env }),
    podman: (args, options) =>
      runCommand(
        'podman',
        [
          '--root',
          p('root'),
          '--runroot',
          p('runroot'),
          '--tmpdir',
          p('tmp'),
          '--events-backend=file',
          '--cgroup-manager=cgroupfs',
          '--storage-driver=vfs',
          ...args,
        ],
        { ...options, env },
      ),
    cleanup: () => tmp.cleanup(),
  };
}
