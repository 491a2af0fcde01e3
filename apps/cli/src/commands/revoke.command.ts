import { Command } from 'commander';
import type { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('revoke <username> <repository>')
    .description("remove a member's entitlement to a repository; pulls stop within 10 seconds")
    .addOption(formatOption())
    .action(async (username: string, repository: string, _opts: unknown, cmd: Command) => {
      // Loaded by the action, so `--help` and the other commands do not pay for them.
      const [{ EntitlementService, entitlementView, formatTarget }, { asCliErrors }] = await Promise.all([
        import('@gatehouse/entitlements'),
        import('./member-errors.util'),
      ]);
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const e = await app.get(EntitlementService).revoke(username, repository);
          (await import('./cli-audit.util')).cliChanged(
            app,
            'cli.entitlement.revoke',
            { memberId: e.memberId, username: e.member?.username ?? username, repository: e.repository },
            { tagRules: e.tagRules },
          );
          if (commandFormat(cmd) === 'json')
            return ctx.out.json({ ...entitlementView(e, new Date()), revoked: true });
          ctx.out.line(
            `Revoked: ${e.member?.username ?? username} may no longer ${e.kind === 'image' ? 'pull' : 'download'} ${formatTarget(e)}.`,
          );
        }),
      );
    });
}
