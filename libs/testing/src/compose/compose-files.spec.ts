import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

// Static checks of the deployment files, without a Docker engine (apps/gateway/test/engine/
// builds and runs them for real).
// What they pin is what breaks a deployment silently: a bind mount the non-root user cannot
// write, a variable compose reads that nobody documented, a dev port that no longer matches
// the realm the gateway advertises.

const root = path.resolve(__dirname, '../../../..');
const read = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  env_file?: string | string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  restart?: string;
  healthcheck?: { test?: string[]; interval?: string; retries?: number };
  profiles?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const loadCompose = (file: string): ComposeFile => parse(read(file)) as ComposeFile;

/** Variables compose interpolates: `${VAR}`, `${VAR:-x}`, `${VAR:?msg}`; `$${X}` is a literal `$`. */
function interpolatedVariables(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/(\$+)\{([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (m[1].length % 2 === 1) out.add(m[2]);
  }
  return [...out].sort();
}

/** Unbraced `$VAR` interpolation, which this project does not use (it hides defaults). */
function unbracedVariables(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(\$+)([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (m[1].length % 2 === 1) out.push(m[2]);
  }
  return out;
}

/** Replaces `${VAR:-default}` / `${VAR-default}` by the default, as compose does with VAR unset. */
function withDefaults(value: string): string {
  return value.replace(
    /\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g,
    (_all, def: string | undefined) => def ?? '',
  );
}

function envExampleVariables(): Set<string> {
  const vars = new Set<string>();
  for (const line of read('.env.example').split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=/.exec(line);
    if (m) vars.add(m[1]);
  }
  return vars;
}

/** `[host:]hostPort:containerPort` split into its parts (IPv4 hosts only, as used here). */
function parsePort(spec: string): { host?: string; published: string; target: string } {
  const parts = spec.split(/:(?![^{]*\})/);
  if (parts.length === 3) return { host: parts[0], published: parts[1], target: parts[2] };
  if (parts.length === 2) return { published: parts[0], target: parts[1] };
  throw new Error(`unexpected port spec ${spec}`);
}

function parseVolume(spec: string): { source: string; target: string } {
  const [source, target] = spec.split(':');
  return { source, target };
}

const isBindMount = (source: string): boolean => /^[./~]/.test(source) || source.includes('/');

interface DockerInstruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions per stage (continuation lines joined, comments dropped). */
function dockerStages(file: string): DockerInstruction[][] {
  const joined = read(file)
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: DockerInstruction[][] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const ins = { keyword: m[1].toUpperCase(), args: m[2].trim() };
    if (ins.keyword === 'FROM') stages.push([]);
    stages[stages.length - 1]?.push(ins);
  }
  return stages;
}

describe('compose helpers', () => {
  it('finds interpolated variables and skips escaped dollars', () => {
    expect(interpolatedVariables('a ${A} b ${B:-x} c ${C:?msg} d $${D} e $$$${E} f $$${F}')).toEqual([
      'A',
      'B',
      'C',
      'F',
    ]);
    expect(unbracedVariables('x $HOME y $$LITERAL z ${BRACED}')).toEqual(['HOME']);
  });

  it('resolves defaults and port specs', () => {
    expect(withDefaults('localhost:${P:-18081}')).toBe('localhost:18081');
    expect(parsePort('${BIND:-127.0.0.1}:${P:-8080}:8080')).toEqual({
      host: '${BIND:-127.0.0.1}',
      published: '${P:-8080}',
      target: '8080',
    });
    expect(isBindMount('./data')).toBe(true);
    expect(isBindMount('/srv/gatehouse')).toBe(true);
    expect(isBindMount('gatehouse-data')).toBe(false);
  });
});

describe.each(['compose.yml', 'compose.dev.yml'])('%s', (file) => {
  const compose = loadCompose(file);
  const text = read(file);

  it('documents every interpolated variable in .env.example', () => {
    const documented = envExampleVariables();
    const used = interpolatedVariables(text);
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((v) => !documented.has(v))).toEqual([]);
    expect(unbracedVariables(text)).toEqual([]);
  });

  it('has a gateway and a postgres service, each with a healthcheck', () => {
    const always = Object.keys(compose.services).filter((name) => !compose.services[name].profiles);
    expect(always.sort()).toEqual(['gateway', 'postgres']);
    for (const service of Object.values(compose.services)) {
      expect(service.healthcheck?.test?.length).toBeGreaterThan(0);
    }
    expect(compose.services.postgres.image).toBe('postgres:17');
    expect(compose.services.postgres.healthcheck!.test!.join(' ')).toContain('pg_isready');
    expect(compose.services.gateway.depends_on?.postgres?.condition).toBe('service_healthy');
  });

  it('runs the replicas profile as two gateways, Redis and nginx with docker/nginx.conf', () => {
    if (file !== 'compose.yml') return;
    const replicas = Object.keys(compose.services).filter((n) =>
      compose.services[n].profiles?.includes('replicas'),
    );
    expect(replicas.sort()).toEqual(['gateway-2', 'lb', 'redis']);
    expect(fs.existsSync(path.join(root, 'docker/nginx.conf'))).toBe(true);
    expect(read('docker/nginx.conf')).toMatch(/server gateway:8080[^;]*;\s*server gateway-2:8080/);
  });

  it('keeps data and cache on named volumes (a bind mount keeps the host owner; uid 10001 cannot write)', () => {
    const mounts = (compose.services.gateway.volumes ?? []).map(parseVolume);
    const byTarget = new Map(mounts.map((m) => [m.target, m.source]));
    const prefix = file === 'compose.yml' ? 'gatehouse-' : 'gatehouse-dev-';
    for (const target of ['/data', '/data/cache']) {
      const source = byTarget.get(target);
      expect(source).toBeDefined();
      expect(isBindMount(source!)).toBe(false);
      expect(source!.startsWith(prefix)).toBe(true);
      expect(Object.keys(compose.volumes ?? {})).toContain(source);
    }
    const dbMount = (compose.services.postgres.volumes ?? []).map(parseVolume);
    expect(dbMount.map((m) => m.target)).toEqual(['/var/lib/postgresql/data']);
    expect(isBindMount(dbMount[0].source)).toBe(false);
  });

  it('publishes the gateway on the port it listens on, probed by the image healthcheck script', () => {
    const gateway = compose.services.gateway;
    const ports = (gateway.ports ?? []).map(parsePort);
    expect(ports).toHaveLength(1);
    expect(ports[0].target).toBe(gateway.environment?.PORT);
    expect(gateway.environment?.DATA_DIR).toBe('/data');
    expect(gateway.healthcheck!.test).toEqual(['CMD', 'node', '/app/docker/healthcheck.js']);
    expect(fs.existsSync(path.join(root, 'docker/healthcheck.js'))).toBe(true);
  });

  it('points the gateway at the postgres service', () => {
    const url = withDefaults(compose.services.gateway.environment?.DATABASE_URL ?? '');
    expect(new URL(url.replace(/\$\{[^}]*\}/g, 'x')).host).toBe('postgres:5432');
  });
});

describe('compose.yml (production)', () => {
  const compose = loadCompose('compose.yml');
  const gateway = compose.services.gateway;

  it('builds the production image, reads .env and restarts on failure', () => {
    expect(gateway.build?.dockerfile).toBe('docker/Dockerfile');
    expect([gateway.env_file].flat()).toContain('.env');
    expect(gateway.restart).toMatch(/^(always|unless-stopped|on-failure)/);
    expect(compose.services.postgres.restart).toMatch(/^(always|unless-stopped|on-failure)/);
  });

  it('does not publish PostgreSQL and requires its password', () => {
    expect(compose.services.postgres.ports).toBeUndefined();
    expect(compose.services.postgres.environment?.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?/);
    expect(gateway.environment?.DATABASE_URL).toContain('${POSTGRES_PASSWORD:?');
  });
});

describe('compose.dev.yml', () => {
  const compose = loadCompose('compose.dev.yml');
  const gateway = compose.services.gateway;
  const env = gateway.environment ?? {};

  it('derives the advertised service and realm from the published port variable', () => {
    const published = parsePort(gateway.ports![0]).published;
    expect(published).toMatch(/^\$\{GATEHOUSE_DEV_PORT:-\d+\}$/);
    expect(env.OCI_REGISTRY_SERVICE).toBe(`localhost:${published}`);
    expect(env.OCI_REGISTRY_REALM).toBe(`http://localhost:${published}/auth/token`);
    expect(withDefaults(env.OCI_REGISTRY_REALM)).toBe('http://localhost:18081/auth/token');
  });

  it('passes the upstream settings through with empty defaults (registry disabled until .env sets them)', () => {
    expect(env.FORGEJO_BASE_URL).toBe('${FORGEJO_BASE_URL:-}');
    expect(env.FORGEJO_API_TOKEN).toBe('${FORGEJO_API_TOKEN:-}');
  });

  it('builds the dev image', () => {
    expect(gateway.build?.dockerfile).toBe('docker/Dockerfile.dev');
  });
});

describe('docker/Dockerfile', () => {
  const stages = dockerStages('docker/Dockerfile');
  const runtime = stages[stages.length - 1];
  const find = (keyword: string): DockerInstruction[] => runtime.filter((i) => i.keyword === keyword);
  const indexOf = (pred: (i: DockerInstruction) => boolean): number => runtime.findIndex(pred);

  it('is multi-stage on BASE_IMAGE (node:20-bookworm-slim by default), building with npm ci and pruning dev dependencies', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // `just image` passes a local base when the engine cannot pull the default.
    expect(read('docker/Dockerfile')).toMatch(/^ARG BASE_IMAGE=node:20-bookworm-slim$/m);
    for (const stage of stages) expect(stage[0].args).toMatch(/^\$\{BASE_IMAGE\}(\s+AS\s+\w+)?$/);
    const buildRuns = stages[0].filter((i) => i.keyword === 'RUN').map((i) => i.args);
    // The registry the building machine's npm uses (`just image` passes it), npm's default otherwise.
    expect(stages[0].some((i) => i.keyword === 'ARG' && i.args === 'NPM_REGISTRY=')).toBe(true);
    expect(buildRuns.join('\n')).toMatch(/npm ci .*\$\{NPM_REGISTRY:\+--registry="\$NPM_REGISTRY"\}/);
    expect(buildRuns.join('\n')).toMatch(/npm run build/);
    expect(buildRuns.join('\n')).toMatch(/npm prune --omit=dev/);
  });

  it('runs as the non-root user gatehouse (uid 10001)', () => {
    const users = find('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1].args).toBe('gatehouse');
    expect(find('RUN').some((i) => /useradd[^&]*--uid 10001\b[^&]*gatehouse/.test(i.args))).toBe(true);
  });

  it('creates and chowns /data and /data/cache before declaring them volumes', () => {
    const chown = indexOf(
      (i) => i.keyword === 'RUN' && /mkdir -p \/data\/cache/.test(i.args) && /chown/.test(i.args),
    );
    const volume = indexOf((i) => i.keyword === 'VOLUME');
    expect(chown).toBeGreaterThanOrEqual(0);
    expect(volume).toBeGreaterThan(chown);
    expect(JSON.parse(runtime[volume].args)).toEqual(['/data', '/data/cache']);
    expect(find('ENV').some((i) => /\bDATA_DIR=\/data\b/.test(i.args))).toBe(true);
  });

  it('has a node HEALTHCHECK on /healthz, exposes 8080 and starts the built gateway', () => {
    const health = find('HEALTHCHECK');
    expect(health).toHaveLength(1);
    expect(health[0].args).toContain('"node", "/app/docker/healthcheck.js"');
    expect(read('docker/healthcheck.js')).toContain("'/healthz'");
    expect(find('EXPOSE').map((i) => i.args)).toEqual(['8080']);
    const cmd = JSON.parse(find('CMD')[0].args) as string[];
    expect(cmd).toEqual(['node', 'dist/apps/gateway/src/main.js']);
    // The path the build produces: nest-cli's entry file, under dist/.
    const nest = JSON.parse(read('nest-cli.json')) as { projects: Record<string, { entryFile: string }> };
    expect(`dist/${nest.projects.gateway.entryFile}.js`).toBe(cmd[1]);
  });
});

describe('.dockerignore', () => {
  it('keeps local state and dependencies out of the build context', () => {
    const entries = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const e of ['node_modules', 'dist', 'data', '.tmp', '.git', '.env']) expect(entries).toContain(e);
  });
});
