import { Command } from 'commander';
import { CliContext } from '../cli-context';
import * as audit from './audit.command';
import * as entitlements from './entitlements.command';
import * as explain from './explain.command';
import * as grant from './grant.command';
import * as key from './key.command';
import * as member from './member.command';
import * as migrate from './migrate.command';
import * as revoke from './revoke.command';
import * as verifyOci from './verify-oci.command';
import * as webhook from './webhook.command';

/** Every command module; a new command is a `<name>.command.ts` file and one line here. */
export const COMMANDS: Array<{ register(program: Command, ctx: CliContext): void }> = [
  migrate,
  member,
  key,
  grant,
  revoke,
  entitlements,
  verifyOci,
  audit,
  explain,
  webhook,
];
