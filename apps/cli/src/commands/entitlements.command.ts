import { Command } from 'commander';
import { EntitlementService, isEntitlementLive } from '@gatehouse/entitlements';
import { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';
import { entitlementJson } from './grant.command';
import { asCliErrors } from './member-errors.util';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('entitlements')
    .description('list entitlements, expired ones included')
    .option('--member <username>', "only this member's entitlements")
    .option('--repository <name>', 'only entitlements to this repository')
    .addOption(formatOption())
    .action(async (opts: { member?: string; repository?: string }, cmd: Command) => {
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const rows = await app
            .get(EntitlementService)
            .list({ username: opts.member, repository: opts.repository });
          const now = new Date();
          if (commandFormat(cmd) === 'json') return ctx.out.json(rows.map((e) => entitlementJson(e, now)));
          ctx.out.records(
            rows,
            [
              { header: 'member', value: (e) => e.member?.username },
              { header: 'repository', value: (e) => e.repository },
              { header: 'tags', value: (e) => e.tagRules },
              { header: 'expires', value: (e) => e.expiresAt },
              { header: 'status', value: (e) => (isEntitlementLive(e, now) ? 'live' : 'expired') },
              { header: 'note', value: (e) => e.note },
            ],
            'table',
            'No entitlements.',
          );
        }),
      );
    });
}
