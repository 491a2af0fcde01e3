import { Command } from 'commander';
import type { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--dry-run', 'list pending migrations without applying them')
    .option('--show', 'same as --dry-run')
    .addOption(formatOption())
    .action(async (opts: { dryRun?: boolean; show?: boolean }, cmd: Command) => {
      const format = commandFormat(cmd);
      // Loaded here, not at the top, so `--help` and the read-only commands do not pay for them.
      const [{ DataSource }, { pendingMigrations, runMigrations }] = await Promise.all([
        import('typeorm'),
        import('@gatehouse/database'),
      ]);
      await ctx.withApp(
        async (app) => {
          const dataSource = app.get(DataSource);
          if (opts.dryRun || opts.show) {
            const pending = await pendingMigrations(dataSource);
            if (format === 'json') return ctx.out.json({ pending });
            if (pending.length === 0)
              return ctx.out.line('No pending migrations: the database schema is up to date.');
            ctx.out.line(`${pending.length} pending migration${pending.length === 1 ? '' : 's'}:`);
            for (const name of pending) ctx.out.line(`  ${name}`);
            return;
          }
          const applied = await runMigrations(dataSource);
          if (format === 'json') return ctx.out.json({ applied });
          if (applied.length === 0)
            return ctx.out.line('No pending migrations: the database schema is up to date.');
          for (const name of applied) ctx.out.line(`applied ${name}`);
          ctx.out.line(`Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}.`);
        },
        { migrate: false, noSecret: true },
      );
    });
}
