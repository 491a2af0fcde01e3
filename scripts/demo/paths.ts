import { join, resolve } from 'node:path';

export { DEMO } from './targets';

/** Everything the demo writes lives here; scripts/demo-stop.sh reads the pid files. */
export const REPO_ROOT = resolve(__dirname, '../..');
/** DEMO_DIR moves it (relative to the repository), e.g. for a test beside a running demo. */
export const DEMO_DIR = process.env.DEMO_DIR
  ? resolve(REPO_ROOT, process.env.DEMO_DIR)
  : join(REPO_ROOT, '.tmp', 'demo');

export const demoPaths = {
  dataDir: join(DEMO_DIR, 'data'),
  gatewayLog: join(DEMO_DIR, 'gateway.log'),
  gatewayPid: join(DEMO_DIR, 'gateway.pid'),
  /** The upstream keeper's log: the Forgejo front's requests, signing, seeding. */
  registryLog: join(DEMO_DIR, 'registry.log'),
  registryPid: join(DEMO_DIR, 'registry.pid'),
  /** Written by upstream-registry.ts once its registry answers. */
  registryInfo: join(DEMO_DIR, 'registry.json'),
  cliLog: join(DEMO_DIR, 'cli.log'),
  pullLog: join(DEMO_DIR, 'pull.log'),
  /** Every curl the demo ran, with its output. */
  curlLog: join(DEMO_DIR, 'curl.log'),
  /** `cosign verify`'s output. */
  signatureLog: join(DEMO_DIR, 'signature.log'),
  pulled: join(DEMO_DIR, 'pulled'),
  /** The demo member's access key, for trying docker/podman by hand afterwards. */
  accessKey: join(DEMO_DIR, 'access-key'),
  /** The vendor's public sigstore key (`cosign verify --key`). */
  signingPublicKey: join(DEMO_DIR, 'sigstore.pub'),
  /** Downloads made by the demo (whole and resumed). */
  downloads: join(DEMO_DIR, 'downloads'),
  /** The demo gateway's ADMIN_TOKEN, so `just verify-oci` can check the audit rows. */
  adminToken: join(DEMO_DIR, 'admin-token'),
};

export interface RegistryInfo {
  url: string;
  hostPort: string;
  port: number;
  username: string;
  password: string;
  /** The docker-registry behind the front (the front alone talks to it). */
  registryUrl: string;
  /** The signed multi-arch index of `DEMO.image`, and the SBOM that refers to it. */
  imageDigest: string;
  sbomDigest: string;
}
