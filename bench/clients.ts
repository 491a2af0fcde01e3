import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
// The bench drives the test harness's own engine and client sandbox: the same real parts as the tests.
// eslint-disable-next-line no-restricted-imports
import { DockerEngine, ENGINE_BINARIES, startDockerEngine } from '../libs/testing/src/engine/docker-engine';
// eslint-disable-next-line no-restricted-imports
import { createContainerToolsSandbox, RegistryProcess, runCommand } from '../libs/testing/src/upstream';
import { median, now } from './measure';
import { BenchImage } from './seed';
import { BenchGateway, BenchMember } from './stack';
import { Row } from './table';

const MB = 1e6;
const PULL_TIMEOUT_MS = 300_000;

export interface ClientsFigureOptions {
  image: BenchImage;
  /** The gateway's htpasswd upstream: the direct reference, pulled with its service credential. */
  upstream: RegistryProcess;
  member: BenchMember;
  /** Stops the current gateway and starts one with a fresh, empty cache (run.ts's launch()). */
  relaunch: () => Promise<BenchGateway>;
  current: () => BenchGateway;
  run: string;
  repeats: number;
  log: (s: string) => void;
}

interface Side {
  host: string;
  username: string;
  password: string;
}

/** One client: pulls `ref` from `side` into an empty place, timed as the whole command, then empties it. */
interface Client {
  name: string;
  login(side: Side): Promise<void>;
  pull(side: Side, tag: string): Promise<number>;
  /** Leaves the client with no copy of the image; throws when something is left. */
  clear(): Promise<void>;
}

async function must(what: string, p: Promise<{ code: number; stdout: string; stderr: string }>) {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r;
}

function dockerClient(engine: DockerEngine, image: BenchImage): Client {
  const data = join(engine.dir, 'data');
  const entries = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);
  return {
    name: 'docker pull',
    login: async (s) => {
      await must('docker login', engine.docker(['login', '-u', s.username, '-p', s.password, s.host]));
    },
    pull: async (s, tag) => {
      const ref = `${s.host}/${image.repository}:${tag}`;
      const t0 = now();
      const r = await must(
        `docker pull ${ref}`,
        engine.docker(['pull', ref], { timeoutMs: PULL_TIMEOUT_MS }),
      );
      const ms = now() - t0;
      // The engine must have fetched the layer, not found it: "Pull complete", never "Already exists".
      if (!/Pull complete/.test(r.stdout) || /Already exists/.test(r.stdout))
        throw new Error(`docker pull ${ref} did not download the layer: ${r.stdout.trim()}`);
      // The places clear() checks are where this engine keeps the image (else its check proves nothing).
      if (
        entries(join(data, 'image/vfs/layerdb/sha256')).length === 0 ||
        entries(join(data, 'vfs/dir')).length === 0
      )
        throw new Error(`docker pull ${ref}: no layer under ${data}; the engine keeps its layers elsewhere`);
      return ms;
    },
    clear: async () => {
      const ids = (await must('docker images', engine.docker(['images', '-aq']))).stdout.split(/\s+/);
      const unique = [...new Set(ids.filter(Boolean))];
      if (unique.length > 0) await must('docker rmi', engine.docker(['rmi', '-f', ...unique]));
      // No image, no layer, no extracted tree and nothing in containerd's content store (dockerd
      // 20.10 without the snapshotter keeps the manifest there until the rmi): the next pull
      // downloads everything.
      const left = (await must('docker images', engine.docker(['images', '-aq']))).stdout.trim();
      const layers = entries(join(data, 'image/vfs/layerdb/sha256'));
      const trees = entries(join(data, 'vfs/dir'));
      const ctr = (...args: string[]) =>
        runCommand(ENGINE_BINARIES.ctr, [
          '--address',
          engine.containerdAddress,
          '--namespace',
          'moby',
          ...args,
        ]);
      let content = (await must('ctr content ls', ctr('content', 'ls', '-q'))).stdout.trim();
      // Left by an earlier run or test on this engine's data root (an interrupted one, or a
      // manifest dockerd kept): removed, then checked again.
      if (content) {
        await must('ctr content rm', ctr('content', 'rm', ...content.split(/\s+/)));
        content = (await must('ctr content ls', ctr('content', 'ls', '-q'))).stdout.trim();
      }
      if (left || layers.length || trees.length || content)
        throw new Error(
          `the engine still holds a copy: images [${left}], layers [${layers}], trees [${trees}], content [${content}]`,
        );
    },
  };
}

function skopeoClient(
  tools: Awaited<ReturnType<typeof createContainerToolsSandbox>>,
  image: BenchImage,
  run: string,
): Client {
  let n = 0;
  const dests: string[] = [];
  return {
    name: 'skopeo copy',
    login: async () => undefined,
    pull: async (s, tag) => {
      const dest = join(run, `skopeo-${n++}`);
      rmSync(dest, { recursive: true, force: true });
      dests.push(dest);
      const t0 = now();
      await must(
        'skopeo copy',
        tools.skopeo(
          [
            'copy',
            '--src-tls-verify=false',
            '--src-creds',
            `${s.username}:${s.password}`,
            `docker://${s.host}/${image.repository}:${tag}`,
            `dir:${dest}`,
          ],
          { timeoutMs: PULL_TIMEOUT_MS },
        ),
      );
      const ms = now() - t0;
      const hex = image.layer.digest.slice('sha256:'.length);
      const size = existsSync(join(dest, hex)) ? statSync(join(dest, hex)).size : 0;
      if (size !== image.layer.size) throw new Error(`skopeo copy wrote ${size} bytes of the layer`);
      return ms;
    },
    clear: async () => {
      for (const d of dests.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

/**
 * Figure 9: real clients end to end. `docker pull` (a private Debian dockerd 20.10) and
 * `skopeo copy` of the 200 MB image through the gateway, cold (a fresh gateway with an empty
 * cache, the client holding no copy) and warm (cached), beside the same client pulling from the
 * htpasswd upstream directly. Each pull is one whole command, wall clock; `repeats` runs
 * alternating direct / gateway, median. The upstream's access log checks where bytes came from:
 * every direct and every cold gateway pull fetches the layer from it once, a warm one never.
 */
export async function clientsFigure(o: ClientsFigureOptions): Promise<{ rows: Row[]; raw: unknown }> {
  const { image, upstream, member, log } = o;
  const direct: Side = {
    host: upstream.hostPort,
    username: upstream.credentials!.username,
    password: upstream.credentials!.password,
  };
  const via = (gw: BenchGateway): Side => ({
    host: gw.service,
    username: member.username,
    password: member.key,
  });
  const layerGets = (): number =>
    readFileSync(upstream.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(`"GET /v2/${image.repository}/blobs/${image.layer.digest}`)).length;
  const upstreamGets = async (f: () => Promise<number>): Promise<{ ms: number; gets: number }> => {
    const before = layerGets();
    const ms = await f();
    await new Promise((r) => setTimeout(r, 500)); // the registry writes its access log after the response
    return { ms, gets: layerGets() - before };
  };

  log('figure 9: starting a private Docker engine (vfs)');
  const t0 = now();
  // Plain http on loopback, for every port the relaunched gateways get.
  const engine = await startDockerEngine({ insecureRegistries: ['127.0.0.0/8'] });
  log(`  engine ready in ${((now() - t0) / 1000).toFixed(1)} s`);
  const tools = await createContainerToolsSandbox();
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  try {
    for (const client of [dockerClient(engine, image), skopeoClient(tools, image, o.run)]) {
      await client.clear();
      await client.login(direct);
      // Untimed: the upstream's storage in the page cache, as for figure 3.
      await client.pull(direct, image.tag);
      await client.clear();
      for (const mode of ['cold', 'warm'] as const) {
        const d: number[] = [];
        const g: number[] = [];
        for (let i = 0; i < o.repeats; i++) {
          const gw = mode === 'cold' ? await o.relaunch() : o.current();
          await client.login(via(gw));
          const dr = await upstreamGets(() => client.pull(direct, image.tag));
          await client.clear();
          const gr = await upstreamGets(() => client.pull(via(gw), image.tag));
          await client.clear();
          const expected = mode === 'cold' ? 1 : 0;
          if (dr.gets < 1 || (mode === 'cold' ? gr.gets < 1 : gr.gets !== expected))
            throw new Error(
              `${client.name} ${mode}: upstream layer GETs direct ${dr.gets}, via the gateway ${gr.gets}`,
            );
          d.push(dr.ms);
          g.push(gr.ms);
          log(
            `  ${client.name} ${mode} run ${i + 1}: direct ${(dr.ms / 1000).toFixed(2)} s, gateway ${(gr.ms / 1000).toFixed(2)} s ` +
              `(upstream layer GETs: direct ${dr.gets}, gateway ${gr.gets})`,
          );
        }
        raw[`${client.name} ${mode}`] = { directMs: d, gatewayMs: g };
        const dm = median(d);
        const gm = median(g);
        rows.push({
          figure: '9',
          measure: `${client.name} ${Math.round(image.layer.size / MB)} MB image, ${mode === 'cold' ? 'cold (fresh gateway, empty cache)' : 'warm (cached)'}, median of ${o.repeats}`,
          gatehouse: `${(gm / 1000).toFixed(2)} s`,
          reference: `${(dm / 1000).toFixed(2)} s direct from upstream`,
          ratio: `${(gm / dm).toFixed(2)}×`,
          target: '(reported)',
          met: null,
        });
      }
    }
  } finally {
    await tools.cleanup().catch(() => undefined);
    await engine.stop().catch(() => undefined);
  }
  return { rows, raw };
}
