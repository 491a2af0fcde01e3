import { Command, Option } from 'commander';
import type { CliContext } from '../cli-context';
import { CliError } from '../cli-error';
import { Column, commandFormat, formatOption } from '../output';
import type { RawVerifyOptions } from '../verify/verify-options';
import type { RowResult } from '../verify/verify-result';

const COLUMNS: Column<RowResult>[] = [
  { header: 'check', value: (r) => r.row },
  { header: 'result', value: (r) => r.status },
  { header: 'evidence', value: (r) => r.evidence, wrapFirst: true },
];

const envOption = (flags: string, description: string, env: string) =>
  new Option(flags, description).env(env);

export function register(program: Command, ctx: CliContext): void {
  program
    .command('verify-oci')
    .description('verify a RUNNING stack end to end as a member would use it; exits 1 on any FAIL')
    .addOption(
      envOption(
        '--url <url>',
        'where clients reach the registry, e.g. https://registry.example.com',
        'VERIFY_OCI_URL',
      ),
    )
    .addOption(envOption('--username <name>', "a test member's username", 'VERIFY_OCI_USERNAME'))
    .addOption(
      envOption(
        '--password <key>',
        "that member's access key (prefer the environment variable)",
        'VERIFY_OCI_PASSWORD',
      ),
    )
    .addOption(
      envOption(
        '--image <repository:tag>',
        'a tag the member is entitled to, e.g. acme/app:v1.0.0',
        'VERIFY_OCI_IMAGE',
      ),
    )
    .addOption(
      envOption(
        '--unentitled-tag <tag>',
        'a tag of the same repository the member is NOT entitled to',
        'VERIFY_OCI_UNENTITLED_TAG',
      ),
    )
    .addOption(
      envOption(
        '--unknown-repository <name>',
        'a repository that does not exist (default <owner>/gatehouse-verify-oci-unknown)',
        'VERIFY_OCI_UNKNOWN_REPOSITORY',
      ),
    )
    .addOption(
      envOption(
        '--metrics-url <url>',
        "the gateway's /metrics (default <url>/metrics)",
        'VERIFY_OCI_METRICS_URL',
      ),
    )
    .addOption(
      envOption('--admin-url <url>', 'the admin API, to check the audit rows', 'VERIFY_OCI_ADMIN_URL'),
    )
    .addOption(envOption('--admin-token <token>', 'bearer token for the admin API', 'VERIFY_OCI_ADMIN_TOKEN'))
    .addOption(
      envOption(
        '--check-rate-limit',
        'burst bad logins (throw-away username) until 429',
        'VERIFY_OCI_CHECK_RATE_LIMIT',
      ),
    )
    .addOption(
      envOption(
        '--rate-limit-max <n>',
        'bad logins to send before failing the rate-limit row',
        'VERIFY_OCI_RATE_LIMIT_MAX',
      ),
    )
    .option('--no-client', 'do not run skopeo or docker')
    .addOption(envOption('--timeout <seconds>', 'per request (default 30)', 'VERIFY_OCI_TIMEOUT'))
    .addOption(formatOption())
    .action(async (raw: RawVerifyOptions, cmd: Command) => {
      // Loaded by the action (undici, the OCI lib), so `--help` and the other commands do not pay for them.
      const [{ runVerifyOci }, { resolveVerifyOptions, VerifyOptionsError }, { hasFailure, summarize }] =
        await Promise.all([
          import('../verify/verify-oci.runner'),
          import('../verify/verify-options'),
          import('../verify/verify-result'),
        ]);
      let options;
      try {
        options = resolveVerifyOptions(raw);
      } catch (e) {
        if (e instanceof VerifyOptionsError) throw new CliError(`verify-oci: ${e.message}`, 2);
        throw e;
      }
      const format = commandFormat(cmd);
      if (format === 'table')
        ctx.out.error(
          `Verifying ${options.url.origin} as "${options.username}" with ${options.repository}:${options.tag} …`,
        );
      const report = await runVerifyOci(options, (row) => {
        if (ctx.verbose) ctx.out.error(`${row.status} ${row.row}: ${row.evidence}`);
      });
      if (format === 'json') {
        ctx.out.json({ target: report.target, ok: !hasFailure(report.rows), rows: report.rows });
      } else {
        ctx.out.records(report.rows, COLUMNS, 'table');
        ctx.out.line(summarize(report.rows));
      }
      if (hasFailure(report.rows)) {
        const failed = report.rows.filter((r) => r.status === 'FAIL').map((r) => r.row);
        throw new CliError(`verify-oci: FAIL in ${failed.join(', ')}`, 1);
      }
    });
}
