import { randomBytes } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDatabase, freePort, PostgresCluster } from '@gatehouse/database';
import { makeTempDir } from '../upstream/tmp';

export interface StoppablePostgres {
  /** The temp directory holding the server's data (pgdata/); a spec may keep its own files here too. */
  readonly dir: string;
  /** The `gatehouse` database, for the gateway's DATABASE_URL (the same across restarts). */
  readonly url: string;
  /** Stops the server, as an outage under a running gateway. */
  stop(): Promise<void>;
  /** Starts it again, on the same port and data. */
  start(): Promise<void>;
  /** Stops the server and removes its directory (for afterAll). */
  close(): Promise<void>;
}

/**
 * A PostgreSQL server of a spec's own, with an empty `gatehouse` database, for specs that stop and
 * restart it under a running gateway (the shared test cluster must keep serving other suites).
 * `label` names its temp directory.
 */
export async function startStoppablePostgres(label: string): Promise<StoppablePostgres> {
  const tmp = await makeTempDir(label);
  // The server runs as the postgres user when the tests run as root.
  await chmod(tmp.path, 0o755);
  const cluster = new PostgresCluster({
    dataDir: join(tmp.path, 'pgdata'),
    password: randomBytes(12).toString('hex'),
    // A fixed port, so the restarted server is where the gateway's pool looks for it.
    port: await freePort(),
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  const close = async () => {
    await cluster.stop();
    await tmp.cleanup();
  };
  try {
    await cluster.initialise();
    await cluster.start();
    await ensureDatabase(cluster.url('postgres'), 'gatehouse');
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
  return {
    dir: tmp.path,
    url: cluster.url('gatehouse'),
    stop: () => cluster.stop(),
    start: () => cluster.start(),
    close,
  };
}
