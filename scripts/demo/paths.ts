import { join, resolve } from 'node:path';

/** Everything the demo writes lives here; scripts/demo-stop.sh reads the pid files. */
export const REPO_ROOT = resolve(__dirname, '../..');
export const DEMO_DIR = join(REPO_ROOT, '.tmp', 'demo');

export const demoPaths = {
  dataDir: join(DEMO_DIR, 'data'),
  gatewayLog: join(DEMO_DIR, 'gateway.log'),
  gatewayPid: join(DEMO_DIR, 'gateway.pid'),
  registryLog: join(DEMO_DIR, 'registry.log'),
  registryPid: join(DEMO_DIR, 'registry.pid'),
  /** The upstream registry's own access log (a link while it runs, a copy after it stopped). */
  registryAccessLog: join(DEMO_DIR, 'registry-access.log'),
  /** Written by upstream-registry.ts once its registry answers. */
  registryInfo: join(DEMO_DIR, 'registry.json'),
  cliLog: join(DEMO_DIR, 'cli.log'),
  pullLog: join(DEMO_DIR, 'pull.log'),
  pulled: join(DEMO_DIR, 'pulled'),
  /** The demo member's access key, for trying docker/podman by hand afterwards. */
  accessKey: join(DEMO_DIR, 'access-key'),
  /** The demo gateway's ADMIN_TOKEN, so `just verify-oci` can check the audit rows. */
  adminToken: join(DEMO_DIR, 'admin-token'),
};

export interface RegistryInfo {
  url: string;
  hostPort: string;
  port: number;
  username: string;
  password: string;
  /** The registry's own access log (inside its private working directory). */
  logFile: string;
}
