import { resolve } from 'node:path';
import { runCommand } from '../upstream/clients';
import { DockerEngine, ENGINE_BINARIES } from './docker-engine';

const REPO_ROOT = resolve(__dirname, '../../../..');

export interface BuiltImage {
  tag: string;
  /** Wall time of `just image` (scripts/image.sh), base image included. */
  seconds: number;
  output: string;
}

/**
 * Builds the production image into `engine` exactly as `just image` does (scripts/image.sh):
 * the local base image when Docker Hub is out of reach, the host's npm registry.
 */
export async function buildGatewayImage(engine: DockerEngine, tag = 'gatehouse:local'): Promise<BuiltImage> {
  const started = Date.now();
  const r = await runCommand('bash', [resolve(REPO_ROOT, 'scripts/image.sh')], {
    // The machine's own environment (npm config, HOME), pointed at the private engine.
    env: {
      ...process.env,
      DOCKER_HOST: engine.host,
      DOCKER_CONFIG: engine.env.DOCKER_CONFIG,
      DOCKER: ENGINE_BINARIES.docker,
      IMAGE_TAG: tag,
    },
    timeoutMs: 15 * 60_000,
  });
  const output = `${r.stdout}\n${r.stderr}`;
  if (r.code !== 0) {
    const last = output.trim().split('\n').slice(-1)[0];
    throw new Error(`just image failed (exit ${r.code}): ${last}\n${output.slice(-4000)}`);
  }
  return { tag, seconds: Math.round((Date.now() - started) / 100) / 10, output };
}

export interface ContainerRun {
  name: string;
  image: string;
  env?: Record<string, string>;
  /** `-v` specs: `volume:/path` or `/host/dir:/path` */
  volumes?: string[];
  /** More `docker run` flags, before the image. */
  args?: string[];
}

/** `docker run -d --network host` with the image's own HEALTHCHECK probed every second. */
export async function runContainer(engine: DockerEngine, run: ContainerRun): Promise<string> {
  const args = [
    'run',
    '-d',
    '--name',
    run.name,
    '--network',
    'host',
    // The image's HEALTHCHECK command, probed more often than its 15 s so tests do not wait.
    '--health-interval',
    '1s',
    ...Object.entries(run.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...(run.volumes ?? []).flatMap((v) => ['-v', v]),
    ...(run.args ?? []),
    run.image,
  ];
  const r = await engine.docker(args);
  if (r.code !== 0) throw new Error(`docker run ${run.name} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

export interface ContainerState {
  status: string;
  health: string | null;
  exitCode: number;
}

export async function containerState(engine: DockerEngine, name: string): Promise<ContainerState> {
  const r = await engine.docker(['inspect', '--format', '{{json .State}}', name]);
  if (r.code !== 0) throw new Error(`docker inspect ${name}: ${r.stderr.trim()}`);
  const s = JSON.parse(r.stdout) as { Status: string; ExitCode: number; Health?: { Status: string } };
  return { status: s.Status, health: s.Health?.Status ?? null, exitCode: s.ExitCode };
}

/** Resolves when the container's HEALTHCHECK reports healthy; throws with its logs if it exits or times out. */
export async function waitHealthy(engine: DockerEngine, name: string, timeoutMs = 90_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const s = await containerState(engine, name);
    if (s.health === 'healthy') return Date.now() - started;
    if (s.status === 'exited' || s.status === 'dead' || Date.now() - started > timeoutMs) {
      const logs = await engine.docker(['logs', name]);
      throw new Error(
        `container ${name} is ${s.status} (health ${s.health}, exit ${s.exitCode}); its logs:\n${logs.stdout}${logs.stderr}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `docker wait`: the exit code once the container has stopped. */
export async function waitExited(engine: DockerEngine, name: string, timeoutMs = 60_000): Promise<number> {
  const r = await engine.docker(['wait', name], { timeoutMs });
  if (r.code !== 0) throw new Error(`docker wait ${name}: ${r.stderr.trim()}`);
  return Number(r.stdout.trim());
}
