import { Command } from 'commander';
import { EntitlementService, entitlementView, formatTarget } from '@gatehouse/entitlements';
import { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';
import { asCliErrors } from './member-errors.util';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('revoke <username> <repository>')
    .description("remove a member's entitlement to a repository; pulls stop within 10 seconds")
    .addOption(formatOption())
    .action(async (username: string, repository: string, _opts: unknown, cmd: Command) => {
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const e = await app.get(EntitlementService).revoke(username, repository);
          if (commandFormat(cmd) === 'json')
            return ctx.out.json({ ...entitlementView(e, new Date()), revoked: true });
          ctx.out.line(
            `Revoked: ${e.member?.username ?? username} may no longer ${e.kind === 'image' ? 'pull' : 'download'} ${formatTarget(e)}.`,
          );
        }),
      );
    });
}
