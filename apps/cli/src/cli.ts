import { Command, CommanderError } from 'commander';
import { ConfigValidationError } from '@gatehouse/config/errors';
import { CliContext } from './cli-context';
import { CliError, describeError, isErrorLike } from './cli-error';
import { COMMANDS } from './commands';
import { CliIo } from './output';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('gatehouse')
    .description('Gatehouse operator and support CLI (reads the same environment as the gateway)')
    .option('-v, --verbose', 'log progress and show stack traces on errors')
    .option('--wide', 'tables show every column at full width instead of fitting the terminal (COLUMNS)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
    })
    .hook('preAction', (cmd) => {
      ctx.verbose = !!cmd.opts().verbose;
      ctx.out.wide = !!cmd.opts().wide;
    });
  // Registered after the settings above, so every subcommand inherits exitOverride and the output.
  for (const command of COMMANDS) command.register(program, ctx);
  return program;
}

/** Runs one CLI invocation and resolves to its exit code; never exits the process itself. */
export async function runCli(
  args: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const ctx = new CliContext(io, env);
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" to commander; usage problems were already printed.
      return e.exitCode === 0 ? 0 : 2;
    }
    const verbose = ctx.verbose || args.includes('--verbose') || args.includes('-v');
    if (e instanceof ConfigValidationError) {
      ctx.out.error(e.message);
      return 2;
    }
    ctx.out.error(`error: ${describeError(e)}`);
    if (verbose && isErrorLike(e) && e.stack) ctx.out.error(e.stack);
    return e instanceof CliError ? e.exitCode : 1;
  }
}
