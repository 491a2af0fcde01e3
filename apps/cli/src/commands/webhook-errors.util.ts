import { WebhookNotFound, WebhookTargetError } from '@gatehouse/events';
import { CliError } from '../cli-error';

/** Webhook errors become operator errors: a refused URL or type exits 2, an unknown id exits 1. */
export async function asCliErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof WebhookTargetError) throw new CliError(e.message, 2);
    if (e instanceof WebhookNotFound) throw new CliError(e.message, 1);
    throw e;
  }
}
