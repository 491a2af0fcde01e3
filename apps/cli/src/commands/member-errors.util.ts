import { EntitlementsError } from '@gatehouse/entitlements';
import { MembersError } from '@gatehouse/members';
import { CliError } from '../cli-error';

const BAD_INPUT = new Set(['username_invalid', 'expiry_invalid', 'repository_invalid', 'tag_rule_invalid']);

/** Domain errors become operator errors: bad input exits 2, a missing record or conflict exits 1. */
export async function asCliErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof MembersError || e instanceof EntitlementsError) {
      throw new CliError(e.message, BAD_INPUT.has(e.code) ? 2 : 1);
    }
    throw e;
  }
}
