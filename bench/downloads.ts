import { join } from 'node:path';
import { request } from 'undici';
// eslint-disable-next-line no-restricted-imports
import {
  deterministicBytes,
  generatePat,
  RegistryProcess,
  startForgejoFront,
} from '../libs/testing/src/upstream';
import { median, now } from './measure';
import { RESULTS_DIR } from './paths';
import { basic, BenchMember, cli, startGateway, startPassThrough } from './stack';

const MB = 1e6;
const SIZE = Number(process.env.BENCH_DOWNLOAD_MB || 200) * MB;

/** Seconds to fetch `url` to the end, the body drained as a client would write it. */
async function timedDownload(
  url: string,
  authorization: string,
): Promise<{ ms: number; firstByteMs: number; bytes: number }> {
  const started = now();
  const res = await request(url, { headers: { authorization } });
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
  let bytes = 0;
  let firstByteMs = 0;
  for await (const chunk of res.body) {
    if (bytes === 0) firstByteMs = now() - started;
    bytes += (chunk as Buffer).length;
  }
  return { ms: now() - started, firstByteMs, bytes };
}

/**
 * Figure 8: a cold release asset of BENCH_DOWNLOAD_MB (200) MB through a second gateway whose
 * upstream is the Forgejo front, against the same asset fetched from the front directly. Each
 * repeat is a different release, so every gateway download is a cold miss (metadata and bytes).
 */
export async function downloadFigure(
  pgUrl: string,
  member: BenchMember,
  run: string,
  repeats: number,
  log: (s: string) => void,
): Promise<
  Array<{
    figure: string;
    measure: string;
    gatehouse: string;
    reference: string;
    ratio: string;
    target: string;
    met: boolean | null;
  }>
> {
  const pat = generatePat('bench-downloads');
  const front = await startForgejoFront({
    upstreamUrl: 'http://127.0.0.1:9',
    knownOwners: ['acme'],
    tokens: { [pat]: { scopes: ['read:package', 'read:repository'] } },
  });
  try {
    const tags = Array.from({ length: repeats }, (_, i) => `v${i + 1}.0.0`);
    for (const tag of tags)
      front.addRelease('acme/tool', { tag, assets: { tool: deterministicBytes(tag, SIZE) } });
    const upstream = {
      url: front.url,
      credentials: { username: '', password: pat },
    } as unknown as RegistryProcess;
    const gw = await startGateway({
      postgresUrl: pgUrl,
      upstream,
      dataDir: join(run, 'data'),
      cacheDir: join(run, 'cache-downloads'),
      logFile: join(run, 'gateway-downloads.log'),
      nodeArgs:
        process.env.BENCH_CPU_PROF === '1'
          ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles')}`]
          : [],
    });
    try {
      await cli(gw.env, ['grant', member.username, 'releases:acme/tool', '--tags', '*']);
      const direct: number[] = [];
      const via: number[] = [];
      // The floor: a bare Node pass-through with the gateway's HTTP client (bench/passthrough.ts).
      const passThrough = await startPassThrough(front.url, join(run, 'passthrough-downloads.log'));
      const floor: number[] = [];
      for (const tag of tags) {
        const d = await timedDownload(`${front.url}/acme/tool/releases/download/${tag}/tool`, basic('', pat));
        const f = await timedDownload(
          `${passThrough.url}/acme/tool/releases/download/${tag}/tool`,
          basic('', pat),
        );
        const g = await timedDownload(
          `${gw.url}/downloads/releases/acme/tool/${tag}/tool`,
          basic(member.username, member.key),
        );
        if (d.bytes !== SIZE || g.bytes !== SIZE) throw new Error(`short download: ${d.bytes}, ${g.bytes}`);
        if (f.bytes !== SIZE) throw new Error(`short download through the pass-through: ${f.bytes}`);
        direct.push(d.ms);
        via.push(g.ms);
        floor.push(f.ms);
        log(
          `  ${tag}: direct ${d.ms.toFixed(0)} ms, gateway (cold) ${g.ms.toFixed(0)} ms (first byte ${g.firstByteMs.toFixed(0)} ms), pass-through floor ${f.ms.toFixed(0)} ms`,
        );
      }
      const dm = median(direct);
      const gm = median(via);
      const fm = median(floor);
      return [
        {
          figure: '8',
          measure: `cold ${SIZE / MB} MB release asset (median)`,
          gatehouse: `${gm.toFixed(0)} ms (${(SIZE / MB / (gm / 1000)).toFixed(0)} MB/s)`,
          reference: `${dm.toFixed(0)} ms direct from the Forgejo front`,
          ratio: `${(gm / dm).toFixed(2)}×`,
          target: '≤ 1.5×',
          met: gm / dm <= 1.5,
        },
        {
          figure: '8',
          measure: 'the same through a bare Node pass-through (no auth, hash or file): the floor',
          gatehouse: `${fm.toFixed(0)} ms (not Gatehouse)`,
          reference: `${dm.toFixed(0)} ms direct from the Forgejo front`,
          ratio: `${(fm / dm).toFixed(2)}×`,
          target: '(reported)',
          met: null,
        },
      ];
    } finally {
      await gw.stop();
    }
  } finally {
    await front.stop();
  }
}
