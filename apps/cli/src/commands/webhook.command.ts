import { Command, Option } from 'commander';
import type { CliContext } from '../cli-context';
import { commandFormat, formatOption } from '../output';

// Loaded by the action that uses them, so `--help` and the other commands do not pay for them.
const lib = async () => {
  const [events, { asCliErrors }, { cliChanged }] = await Promise.all([
    import('@gatehouse/events'),
    import('./webhook-errors.util'),
    import('./cli-audit.util'),
  ]);
  return { ...events, asCliErrors, cliChanged };
};

const collect = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

export function register(program: Command, ctx: CliContext): void {
  const webhook = program
    .command('webhook')
    .description(
      'manage webhook subscriptions: signed CloudEvents of pulls, downloads, refusals and changes',
    );

  webhook
    .command('add <url>')
    .description('subscribe a URL; prints the signing secret (whsec_…) once')
    .option(
      '--type <types>',
      'event types or prefixes (pull.manifest,member.*); repeatable; default all',
      collect,
    )
    .option('--member <username>', "only this member's events")
    .option('--repository <name>', 'only events about this repository or target')
    .option('--description <text>', 'what the receiver is')
    .addOption(formatOption())
    .action(
      async (
        url: string,
        opts: { type?: string[]; member?: string; repository?: string; description?: string },
        cmd: Command,
      ) => {
        const { WebhookSubscriptions, asCliErrors, cliChanged } = await lib();
        await ctx.withApp((app) =>
          asCliErrors(async () => {
            const { subscription, secret } = await app.get(WebhookSubscriptions).add({
              url,
              eventTypes: opts.type ?? ['*'],
              memberFilter: opts.member,
              repositoryFilter: opts.repository,
              description: opts.description,
              createdBy: 'cli',
            });
            cliChanged(app, 'cli.webhook.add', {}, { webhookId: subscription.id, url: subscription.url });
            if (commandFormat(cmd) === 'json') return ctx.out.json({ ...subscription, secret });
            ctx.out.line(`Webhook ${subscription.id} → ${subscription.url}`);
            ctx.out.line(`Events: ${subscription.eventTypes.join(', ')}`);
            ctx.out.line('');
            ctx.out.line(`  ${secret}`);
            ctx.out.line('');
            ctx.out.line('The signing secret (Standard Webhooks): copy it now, it is not shown again.');
          }),
        );
      },
    );

  webhook
    .command('list')
    .description('list subscriptions (never their secrets)')
    .addOption(formatOption())
    .action(async (_opts: unknown, cmd: Command) => {
      const { WebhookSubscriptions, asCliErrors } = await lib();
      await ctx.withApp(
        (app) =>
          asCliErrors(async () => {
            const rows = await app.get(WebhookSubscriptions).list();
            ctx.out.records(
              rows,
              [
                { header: 'id', value: (s) => s.id, keep: true },
                { header: 'url', value: (s) => s.url },
                { header: 'types', value: (s) => s.eventTypes },
                { header: 'member', value: (s) => s.memberFilter },
                { header: 'repository', value: (s) => s.repositoryFilter },
                { header: 'status', value: (s) => (s.enabled ? 'enabled' : `disabled: ${s.disabledReason}`) },
                { header: 'created', value: (s) => s.createdAt },
              ],
              commandFormat(cmd),
              'No webhook subscriptions.',
            );
          }),
        { readOnly: true },
      );
    });

  webhook
    .command('remove <id>')
    .description('remove a subscription and its deliveries')
    .action(async (id: string) => {
      const { WebhookSubscriptions, asCliErrors, cliChanged } = await lib();
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const sub = await app.get(WebhookSubscriptions).remove(id);
          cliChanged(app, 'cli.webhook.remove', {}, { webhookId: sub.id, url: sub.url });
          ctx.out.line(`Removed webhook ${sub.id} (${sub.url}).`);
        }),
      );
    });

  webhook
    .command('test <id>')
    .description('post one signed webhook.test event now and show the answer')
    .action(async (id: string) => {
      const { WebhookTester, asCliErrors } = await lib();
      const { CliError } = await import('../cli-error');
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const r = await app.get(WebhookTester).test(id);
          if (r.ok) return ctx.out.line(`Delivered (HTTP ${r.status}), event id ${r.eventId}.`);
          throw new CliError(`Not delivered: ${r.error}`, 1);
        }),
      );
    });

  webhook
    .command('deliveries <id>')
    .description('deliveries of a subscription, newest first: status, attempts, last answer or error')
    .addOption(new Option('--status <status>', 'only these').choices(['pending', 'delivered', 'dead']))
    .option('--limit <n>', 'at most this many (default 50)', (v) => Number.parseInt(v, 10))
    .addOption(formatOption())
    .action(
      async (
        id: string,
        opts: { status?: 'pending' | 'delivered' | 'dead'; limit?: number },
        cmd: Command,
      ) => {
        const { WebhookSubscriptions, asCliErrors } = await lib();
        await ctx.withApp(
          (app) =>
            asCliErrors(async () => {
              const rows = await app.get(WebhookSubscriptions).deliveries(id, opts);
              ctx.out.records(
                rows,
                [
                  { header: 'delivery', value: (d) => d.id, keep: true },
                  { header: 'event', value: (d) => d.eventId },
                  { header: 'type', value: (d) => d.eventType },
                  { header: 'status', value: (d) => d.status },
                  { header: 'attempts', value: (d) => d.attempts },
                  { header: 'last status', value: (d) => d.lastStatus },
                  { header: 'last error', value: (d) => d.lastError },
                  { header: 'next attempt', value: (d) => (d.status === 'pending' ? d.nextAttemptAt : null) },
                  { header: 'created', value: (d) => d.createdAt },
                ],
                commandFormat(cmd),
                'No deliveries.',
              );
            }),
          { readOnly: true },
        );
      },
    );

  webhook
    .command('redeliver <id>')
    .description('send dead deliveries again (same event ids): all of a subscription, or one with --delivery')
    .option('--delivery <deliveryId>', 'only this delivery')
    .action(async (id: string, opts: { delivery?: string }) => {
      const { WebhookSubscriptions, asCliErrors, cliChanged } = await lib();
      await ctx.withApp((app) =>
        asCliErrors(async () => {
          const subs = app.get(WebhookSubscriptions);
          const sub = await subs.get(id);
          const n = await subs.redeliver(
            opts.delivery
              ? { deliveryId: opts.delivery, subscriptionId: sub.id }
              : { subscriptionId: sub.id },
          );
          cliChanged(app, 'cli.webhook.redeliver', {}, { webhookId: sub.id, redelivered: n });
          ctx.out.line(`Queued ${n} deliver${n === 1 ? 'y' : 'ies'} again for webhook ${sub.id}.`);
        }),
      );
    });
}
