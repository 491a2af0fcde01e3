import { Command } from 'commander';
import type { Member } from '@gatehouse/members';
import type { CliContext } from '../cli-context';
import { Column, commandFormat, formatOption } from '../output';

// The domain libs are loaded by the action that uses them, so `--help` and the other commands do
// not pay for them (dev-docs/decisions.md, "CLI start").
const members = () => import('@gatehouse/members');
const entitlements = () => import('@gatehouse/entitlements');
const util = () => import('./member-errors.util');
const columns = () => import('./record-columns.util');

const MEMBER_COLUMNS: Column<Member>[] = [
  { header: 'username', value: (m) => m.username },
  { header: 'status', value: (m) => m.status },
  { header: 'created', value: (m) => m.createdAt },
  { header: 'disabled', value: (m) => m.disabledAt },
  { header: 'note', value: (m) => m.note },
  { header: 'id', value: (m) => m.id },
];

export function register(program: Command, ctx: CliContext): void {
  const member = program.command('member').description('manage members (customer accounts)');

  member
    .command('create <username>')
    .description('create a member; usernames are lowercase letters, digits, ".", "_" and "-"')
    .option('--note <text>', 'free text for operators (customer, contract, ticket)')
    .addOption(formatOption())
    .action(async (username: string, opts: { note?: string }, cmd: Command) => {
      const [{ MemberService, memberView }, { asCliErrors }] = await Promise.all([members(), util()]);
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const m = await app.get(MemberService).create(username, opts.note);
          (await import('./cli-audit.util')).cliChanged(app, 'cli.member.create', {
            memberId: m.id,
            username: m.username,
          });
          if (commandFormat(cmd) === 'json') return ctx.out.json(memberView(m));
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
      const { MemberService, memberView } = await members();
      await ctx.withApp(
        async (app) => {
          const rows = await app.get(MemberService).list();
          if (commandFormat(cmd) === 'json') return ctx.out.json(rows.map(memberView));
          ctx.out.records(
            rows,
            MEMBER_COLUMNS,
            'table',
            'No members yet: create one with `gatehouse member create <username>`.',
          );
        },
        { readOnly: true },
      );
    });

  member
    .command('show <username>')
    .description('show a member with their access keys and entitlements')
    .addOption(formatOption())
    .action(async (username: string, _opts: unknown, cmd: Command) => {
      const [{ AccessKeyService, accessKeyView, MemberService, memberView }, e, { asCliErrors }, c] =
        await Promise.all([members(), entitlements(), util(), columns()]);
      const { EntitlementService, entitlementView } = e;
      const { accessKeyColumns, entitlementColumns } = c;
      await ctx.withApp(
        (app) =>
          asCliErrors(async () => {
            const m = await app.get(MemberService).get(username);
            const keys = await app.get(AccessKeyService).list(m.username);
            const grants = await app.get(EntitlementService).list({ username: m.username });
            const now = new Date();
            if (commandFormat(cmd) === 'json') {
              return ctx.out.json({
                ...memberView(m),
                // Nested under the member, so without the member name each row would repeat.
                accessKeys: keys.map((k) => {
                  const { member: _member, ...key } = accessKeyView(k, now);
                  return key;
                }),
                entitlements: grants.map((e) => {
                  const { repository, tagRules, expiresAt, live, note } = entitlementView(e, now);
                  return { repository, tagRules, expiresAt, live, note };
                }),
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
            ctx.out.records(keys, accessKeyColumns(now), 'table', '  none');
            ctx.out.line('entitlements:');
            ctx.out.records(grants, entitlementColumns(now), 'table', '  none');
          }),
        { readOnly: true },
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
        const [{ MemberService, memberView }, { asCliErrors }] = await Promise.all([members(), util()]);
        await ctx.withApp((app) =>
          asCliErrors(async () => {
            const members = app.get(MemberService);
            const m = name === 'disable' ? await members.disable(username) : await members.enable(username);
            (await import('./cli-audit.util')).cliChanged(app, `cli.member.${name}`, {
              memberId: m.id,
              username: m.username,
            });
            if (commandFormat(cmd) === 'json') return ctx.out.json(memberView(m));
            ctx.out.line(`Member ${m.username} is ${verb}.`);
          }),
        );
      });
  }
}
