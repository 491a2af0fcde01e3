import { Command } from 'commander';
import { CliContext } from '../cli-context';
import * as migrate from './migrate.command';

/** Every command module; a new command is a `<name>.command.ts` file and one line here. */
export const COMMANDS: Array<{ register(program: Command, ctx: CliContext): void }> = [migrate];
