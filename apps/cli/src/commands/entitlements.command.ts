import { Command } from 'commander';
import { EntitlementService, entitlementView } from '@gatehouse/entitlements';
import { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';
import { asCliErrors } from './member-errors.util';
import { entitlementColumns } from './record-columns.util';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('entitlements')
    .description('list entitlements, expired ones included')
    .option('--member <username>', "only this member's entitlements")
    .option('--repository <name>', 'only entitlements to this repository')
    .addOption(formatOption())
    .action(async (opts: { member?: string; repository?: string }, cmd: Command) => {
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
