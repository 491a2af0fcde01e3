import { Command } from 'commander';
import { EntitlementService, isEntitlementLive } from '@gatehouse/entitlements';
import { AccessKeyService, Member, MemberService } from '@gatehouse/members';
import { CliContext } from '../cli-context';
import { Column, commandFormat, formatOption } from '../output';
import { asCliErrors, keyStatus } from './member-errors.util';

const MEMBER_COLUMNS: Column<Member>[] = [
  { header: 'username', value: (m) => m.username },
  { header: 'status', value: (m) => m.status },
  { header: 'created', value: (m) => m.createdAt },
  { header: 'disabled', value: (m) => m.disabledAt },
  { header: 'note', value: (m) => m.note },
  { header: 'id', value: (m) => m.id },
];

function memberJson(m: Member) {
  return {
    id: m.id,
    username: m.username,
    status: m.status,
    note: m.note,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    disabledAt: m.disabledAt,
  };
}

export function register(program: Command, ctx: CliContext): void {
  const member = program.command('member').description('manage members (customer accounts)');

  member
    .command('create <username>')
    .description('create a member; usernames are lowercase letters, digits, ".", "_" and "-"')
    .option('--note <text>', 'free text for operators (customer, contract, ticket)')
    .addOption(formatOption())
    .action(async (username: string, opts: { note?: string }, cmd: Command) => {
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const m = await app.get(MemberService).create(username, opts.note);
          if (commandFormat(cmd) === 'json') return ctx.out.json(memberJson(m));
          ctx.out.line(`Created member ${m.username} (${m.id}).`);
          ctx.out.line(`Next: \`gatehouse key create ${m.username}\` to give them an access key.`);
        }),
      );
    });

  member
    .command('list')
    .description('list members')
    .addOption(formatOption())
    .action(async (_opts: unknown, cmd: Command) => {
      await ctx.withApp(async (app) => {
        const rows = await app.get(MemberService).list();
        if (commandFormat(cmd) === 'json') return ctx.out.json(rows.map(memberJson));
        ctx.out.records(
          rows,
          MEMBER_COLUMNS,
          'table',
          'No members yet: create one with `gatehouse member create <username>`.',
        );
      });
    });

  member
    .command('show <username>')
    .description('show a member with their access keys and entitlements')
    .addOption(formatOption())
    .action(async (username: string, _opts: unknown, cmd: Command) => {
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const m = await app.get(MemberService).get(username);
          const keys = await app.get(AccessKeyService).list(m.username);
          const grants = await app.get(EntitlementService).list({ username: m.username });
          const now = new Date();
          if (commandFormat(cmd) === 'json') {
            return ctx.out.json({
              ...memberJson(m),
              accessKeys: keys.map((k) => ({
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                status: keyStatus(k, now),
                createdAt: k.createdAt,
                expiresAt: k.expiresAt,
                lastUsedAt: k.lastUsedAt,
                revokedAt: k.revokedAt,
              })),
              entitlements: grants.map((e) => ({
                repository: e.repository,
                tagRules: e.tagRules,
                expiresAt: e.expiresAt,
                live: isEntitlementLive(e, now),
                note: e.note,
              })),
            });
          }
          ctx.out.line(`member    ${m.username}`);
          ctx.out.line(`id        ${m.id}`);
          ctx.out.line(
            `status    ${m.status}${m.disabledAt ? ` (since ${m.disabledAt.toISOString()})` : ''}`,
          );
          ctx.out.line(`created   ${m.createdAt.toISOString()}`);
          if (m.note) ctx.out.line(`note      ${m.note}`);
          ctx.out.line('');
          ctx.out.line('access keys:');
          ctx.out.records(
            keys,
            [
              { header: 'prefix', value: (k) => k.prefix },
              { header: 'name', value: (k) => k.name },
              { header: 'status', value: (k) => keyStatus(k, now) },
              { header: 'created', value: (k) => k.createdAt },
              { header: 'expires', value: (k) => k.expiresAt },
              { header: 'last used', value: (k) => k.lastUsedAt },
              { header: 'id', value: (k) => k.id },
            ],
            'table',
            '  none',
          );
          ctx.out.line('entitlements:');
          ctx.out.records(
            grants,
            [
              { header: 'repository', value: (e) => e.repository },
              { header: 'tags', value: (e) => e.tagRules },
              { header: 'expires', value: (e) => e.expiresAt },
              { header: 'status', value: (e) => (isEntitlementLive(e, now) ? 'live' : 'expired') },
              { header: 'note', value: (e) => e.note },
            ],
            'table',
            '  none',
          );
        }),
      );
    });

  for (const [name, verb] of [
    ['disable', 'disabled'],
    ['enable', 'enabled'],
  ] as const) {
    member
      .command(`${name} <username>`)
      .description(
        name === 'disable'
          ? 'disable a member: logins are refused and issued tokens stop working within 10 seconds'
          : 'enable a disabled member again',
      )
      .addOption(formatOption())
      .action(async (username: string, _opts: unknown, cmd: Command) => {
        await ctx.withApp((app) =>
          asCliErrors(async () => {
            const members = app.get(MemberService);
            const m = name === 'disable' ? await members.disable(username) : await members.enable(username);
            if (commandFormat(cmd) === 'json') return ctx.out.json(memberJson(m));
            ctx.out.line(`Member ${m.username} is ${verb}.`);
          }),
        );
      });
  }
}
