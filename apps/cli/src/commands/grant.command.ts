import { Command } from 'commander';
import type { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('grant <username> <repository>')
    .description(
      "entitle a member to pull a repository's tags (replaces an existing grant for that repository); releases:<owner>/<repo> entitles release downloads (rules match release tags), packages:<owner>/<name> generic package files (rules match versions)",
    )
    .requiredOption(
      '--tags <rules>',
      'comma-separated tag rules: an exact tag (v1.2.3), a glob (v1.2.*), a semver range (semver:>=1.2.0 <2.0.0) or * for all',
    )
    .option(
      '--expires <when>',
      'expiry: a date (2026-12-31, valid through that day UTC), a date-time, or a duration (90d)',
    )
    .option('--note <text>', 'why this grant exists (contract, ticket)')
    .addOption(formatOption())
    .action(
      async (
        username: string,
        repository: string,
        opts: { tags: string; expires?: string; note?: string },
        cmd: Command,
      ) => {
        // Loaded by the action, so `--help` and the other commands do not pay for them.
        const [
          { EntitlementService, entitlementView, formatTarget, splitTagRules },
          { parseExpiry },
          { asCliErrors },
        ] = await Promise.all([
          import('@gatehouse/entitlements'),
          import('@gatehouse/members'),
          import('./member-errors.util'),
        ]);
        await ctx.withApp((app) =>
          asCliErrors(async () => {
            const expiresAt = opts.expires ? parseExpiry(opts.expires, new Date()) : null;
            const rules = splitTagRules(opts.tags);
            const { entitlement, created } = await app
              .get(EntitlementService)
              .grant(username, repository, rules, { expiresAt, note: opts.note ?? null });
            (await import('./cli-audit.util')).cliChanged(
              app,
              'cli.entitlement.grant',
              {
                memberId: entitlement.memberId,
                username: entitlement.member?.username ?? username,
                repository: entitlement.repository,
              },
              { tagRules: entitlement.tagRules, expiresAt: entitlement.expiresAt, created },
            );
            const image = entitlement.kind === 'image';
            const upper = app.get(EntitlementService).caseFoldedRules(entitlement);
            if (upper.length > 0) {
              // Rules judge a tag in the form the upstream resolves it (UPSTREAM_TAGS_CASE_INSENSITIVE).
              ctx.out.error(
                app.get(EntitlementService).tagCanonicalization.caseInsensitive
                  ? `note: the upstream finds tags whatever their case, so tag rules compare in lower case: ${upper.join(', ')}`
                  : `note: tag rules are case-sensitive (UPSTREAM_TAGS_CASE_INSENSITIVE=false): ${upper.join(', ')}`,
              );
            }
            if (commandFormat(cmd) === 'json')
              return ctx.out.json({ ...entitlementView(entitlement, new Date()), created });
            ctx.out.line(
              `${created ? 'Granted' : 'Updated'}: ${entitlement.member?.username ?? username} may ${image ? 'pull' : 'download'} ${formatTarget(entitlement)} ${entitlement.kind === 'packages' ? 'versions' : 'tags'} ${entitlement.tagRules.join(', ')}` +
                (entitlement.expiresAt ? ` until ${entitlement.expiresAt.toISOString()}` : '') +
                '.',
            );
          }),
        );
      },
    );
}
