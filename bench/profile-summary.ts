import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { REPO_ROOT } from './paths';

// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per package, so a
// profile of the built gateway can be read without a browser.
// Usage: node -r @swc-node/register bench/profile-summary.ts <file.cpuprofile> [top] [last-ms]
// (last-ms: only the samples of the profile's last milliseconds, e.g. the load after start-up).

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (!url) return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (path.startsWith('node:')) return path;
  return relative(REPO_ROOT, path);
}

function main(): void {
  const [file, topArg, lastArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
  const top = Number(topArg || 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const from = lastArg ? profile.endTime - Number(lastArg) * 1000 : profile.startTime;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (t >= from) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const perFunction = new Map<string, number>();
  const perPackage = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const pkg = where(f.url);
    const name = `${f.functionName || '(anonymous)'} ${pkg}:${f.lineNumber + 1}`;
    perFunction.set(name, (perFunction.get(name) ?? 0) + us);
    const group =
      pkg.includes('/') && !pkg.startsWith('@') && !pkg.startsWith('node:')
        ? pkg.split('/')[0] + '/' + pkg.split('/')[1]
        : pkg;
    perPackage.set(group, (perPackage.get(group) ?? 0) + us);
  }
  const print = (title: string, m: Map<string, number>) => {
    process.stdout.write(`\n${title}\n`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(
        `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}\n`,
      );
    }
  };
  process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`);
  print('self time by package / directory', perPackage);
  print('self time by function', perFunction);
}

main();
