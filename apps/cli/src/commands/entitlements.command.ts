import { Command } from 'commander';
import type { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('entitlements')
    .description('list entitlements, expired ones included')
    .option('--member <username>', "only this member's entitlements")
    .option('--repository <name>', 'only entitlements to this repository')
    .addOption(formatOption())
    .action(async (opts: { member?: string; repository?: string }, cmd: Command) => {
      // Loaded by the action, so `--help` and the other commands do not pay for them.
      const [{ EntitlementService, entitlementView }, { asCliErrors }, { entitlementColumns }] =
        await Promise.all([
          import('@gatehouse/entitlements'),
          import('./member-errors.util'),
          import('./record-columns.util'),
        ]);
      await ctx.withApp(
        (app) =>
          asCliErrors(async () => {
            const rows = await app
              .get(EntitlementService)
              .list({ username: opts.member, repository: opts.repository });
            const now = new Date();
            if (commandFormat(cmd) === 'json') return ctx.out.json(rows.map((e) => entitlementView(e, now)));
            ctx.out.records(
              rows,
              [{ header: 'member', value: (e) => e.member?.username }, ...entitlementColumns(now)],
              'table',
              'No entitlements.',
            );
          }),
        { readOnly: true },
      );
    });
}
