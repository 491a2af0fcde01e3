import { Command } from 'commander';
import type { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';

// Loaded by the action that uses them, so `--help` and the other commands do not pay for them.
const lib = async () => {
  const [members, { asCliErrors }, { accessKeyColumns }] = await Promise.all([
    import('@gatehouse/members'),
    import('./member-errors.util'),
    import('./record-columns.util'),
  ]);
  return { ...members, asCliErrors, accessKeyColumns };
};

export function register(program: Command, ctx: CliContext): void {
  const key = program.command('key').description("manage members' access keys");

  key
    .command('create <username>')
    .description('create an access key; it is printed once and only its hash is stored')
    .option('--name <label>', 'a label to recognise the key by (e.g. "ci", "laptop")')
    .option(
      '--expires <when>',
      'expiry: a date (2026-12-31, valid through that day UTC), a date-time, or a duration (90d)',
    )
    .addOption(formatOption())
    .action(async (username: string, opts: { name?: string; expires?: string }, cmd: Command) => {
      const { AccessKeyService, accessKeyView, asCliErrors, parseExpiry } = await lib();
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const expiresAt = opts.expires ? parseExpiry(opts.expires, new Date()) : null;
          const { key: secret, accessKey } = await app
            .get(AccessKeyService)
            .create(username, { name: opts.name, expiresAt });
          (await import('./cli-audit.util')).cliChanged(
            app,
            'cli.key.create',
            { memberId: accessKey.memberId, username: accessKey.member?.username ?? username },
            { accessKeyId: accessKey.id, accessKeyPrefix: accessKey.prefix, name: accessKey.name, expiresAt },
          );
          if (commandFormat(cmd) === 'json')
            return ctx.out.json({ ...accessKeyView(accessKey, new Date()), key: secret });
          ctx.out.line(`Access key for ${accessKey.member?.username ?? username} (id ${accessKey.id}):`);
          ctx.out.line('');
          ctx.out.line(`  ${secret}`);
          ctx.out.line('');
          ctx.out.line('Copy it now: it is shown only this once and cannot be recovered.');
          if (accessKey.expiresAt) ctx.out.line(`It expires at ${accessKey.expiresAt.toISOString()}.`);
          ctx.out.line(
            `The member logs in with: docker login <registry> -u ${accessKey.member?.username ?? username} --password-stdin`,
          );
        }),
      );
    });

  key
    .command('list')
    .description('list access keys (never the secrets)')
    .option('--member <username>', "only this member's keys")
    .addOption(formatOption())
    .action(async (opts: { member?: string }, cmd: Command) => {
      const { AccessKeyService, accessKeyColumns, accessKeyView, asCliErrors } = await lib();
      await ctx.withApp(
        (app) =>
          asCliErrors(async () => {
            const rows = await app.get(AccessKeyService).list(opts.member);
            const now = new Date();
            if (commandFormat(cmd) === 'json') return ctx.out.json(rows.map((k) => accessKeyView(k, now)));
            ctx.out.records(
              rows,
              [{ header: 'member', value: (k) => k.member?.username }, ...accessKeyColumns(now)],
              'table',
              'No access keys.',
            );
          }),

        { readOnly: true },
      );
    });

  key
    .command('revoke <id-or-prefix>')
    .description(
      'revoke a key by id or listed prefix; tokens already issued with it stop working within 10 seconds',
    )
    .addOption(formatOption())
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const { AccessKeyService, accessKeyView, asCliErrors } = await lib();
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const k = await app.get(AccessKeyService).revoke(ref);
          (await import('./cli-audit.util')).cliChanged(
            app,
            'cli.key.revoke',
            { memberId: k.memberId, username: k.member?.username ?? null },
            { accessKeyId: k.id, accessKeyPrefix: k.prefix },
          );
          if (commandFormat(cmd) === 'json') return ctx.out.json(accessKeyView(k, new Date()));
          ctx.out.line(
            `Revoked key ${k.prefix} (${k.id}) of ${k.member?.username ?? k.memberId} at ${k.revokedAt?.toISOString()}.`,
          );
        }),
      );
    });
}
