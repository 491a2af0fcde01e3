import { Command, Option } from 'commander';
import type { TargetReference } from '@gatehouse/oci';
import type { CliContext } from '../cli-context';
import { CliError } from '../cli-error';
import { visible } from '../terminal-text';
import { auditJson } from './audit.command';

/**
 * `acme/app:v1.2.3`, `releases:acme/tool@v1.2.0` or `packages:acme/cli@1.4.0` → target and tag,
 * by the one target parser (libs/oci). A digest cannot be judged without the upstream, so
 * explain works on tags.
 */
export async function parseExplainImage(ref: string): Promise<{ repository: string; tag: string }> {
  // Loaded here, not at the top, so `--help` and the other commands do not pay for them.
  const [{ ImageReferenceError, parseTargetReference }, { formatTarget }] = await Promise.all([
    import('@gatehouse/oci'),
    import('@gatehouse/entitlements'),
  ]);
  let parsed: TargetReference;
  try {
    parsed = parseTargetReference(ref);
  } catch (e) {
    if (e instanceof ImageReferenceError) throw new CliError(e.message, 2);
    throw e;
  }
  if (parsed.digest !== null)
    throw new CliError(
      `"${ref}" names a digest; explain works on tags (a digest is allowed when an entitled tag references it). Give <repository>:<tag>`,
      2,
    );
  if (parsed.tag === null)
    throw new CliError(
      `"${ref}" is not <repository>:<tag>, e.g. acme/app:v1.2.3 (releases:acme/tool@v1.2.0, packages:acme/cli@1.4.0 for downloads)`,
      2,
    );
  return { repository: formatTarget(parsed), tag: parsed.tag };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('explain <username> <image>')
    .description(
      'say whether a member can pull <repository>:<tag> (or download releases:<owner>/<repo>@<tag>, packages:<owner>/<name>@<version>) right now, and why (exit 0: allowed, 1: not allowed)',
    )
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (username: string, image: string, opts: { format: 'text' | 'json' }) => {
      const parsed = await parseExplainImage(image);
      const [audit, entitlements, { accessKeyStatus }, { asCliErrors }] = await Promise.all([
        import('@gatehouse/audit'),
        import('@gatehouse/entitlements'),
        import('@gatehouse/members'),
        import('./member-errors.util'),
      ]);
      const { AuditQueryService } = audit;
      const { AccessExplainService, formatTarget, normalizeTarget } = entitlements;
      const result = await ctx.withApp(
        (app) =>
          asCliErrors(async () => {
            const repository = formatTarget(normalizeTarget(parsed.repository));
            const explained = await app.get(AccessExplainService).explain(username, repository, parsed.tag);
            const events = await app
              .get(AuditQueryService)
              .explainEvents(
                { username: explained.member?.username ?? username, memberId: explained.member?.id },
                repository,
              );
            return { repository, recent: events.target, logins: events.loginRefusals, ...explained };
          }),
        { readOnly: true },
      );
      const { repository, member, keys, entitlement, recent, logins, verdict, checkedAt: now } = result;
      // Printed, so shown escaped: what was typed or stored must not drive the terminal.
      const ref = visible(`${repository}${repository.includes(':') ? '@' : ':'}${parsed.tag}`);
      const who = visible(member?.username ?? username);
      const verb = repository.includes(':') ? 'download' : 'pull';

      if (opts.format === 'json') {
        const e = entitlement?.entitlement ?? null;
        ctx.out.json({
          username: member?.username ?? username,
          repository,
          tag: parsed.tag,
          allowed: verdict.allowed,
          reason: verdict.reason,
          memberSees: verdict.memberSees,
          answer: verdict.answer,
          ifMissing: verdict.ifMissing,
          fix: verdict.fix,
          checks: verdict.checks,
          member: member ? { id: member.id, status: member.status, disabledAt: member.disabledAt } : null,
          accessKeys: keys.map((k) => ({
            id: k.id,
            prefix: k.prefix,
            name: k.name,
            status: accessKeyStatus(k, now),
            expiresAt: k.expiresAt,
            revokedAt: k.revokedAt,
            lastUsedAt: k.lastUsedAt,
          })),
          entitlement: e
            ? {
                repository: e.repository,
                tagRules: e.tagRules,
                expiresAt: e.expiresAt,
                matchedRule: entitlement?.allowed ? (entitlement.match?.rule ?? null) : null,
              }
            : null,
          recentAudit: recent.map(auditJson),
          loginRefusals: logins.map(auditJson),
          checkedAt: now,
        });
      } else {
        ctx.out.line(
          verdict.allowed
            ? `ALLOWED: ${who} can ${verb} ${ref}.`
            : `NOT ALLOWED: ${who} cannot ${verb} ${ref} (reason: ${verdict.reason}).`,
        );
        ctx.out.line('');
        for (const c of verdict.checks) ctx.out.line(`  ${c.ok ? 'ok' : 'NO'}  ${visible(c.detail)}`);
        ctx.out.line('');
        ctx.out.line(`What the member sees: ${visible(verdict.memberSees)}.`);
        if (verdict.fix) ctx.out.line(`To allow it: ${visible(verdict.fix)}`);
        else if (verdict.ifMissing)
          ctx.out.line(
            `(Whether it exists upstream is not checked: if it does not, the member gets ${verdict.ifMissing.status} ${verdict.ifMissing.code}.)`,
          );
        ctx.out.line('');
        if (recent.length === 0) {
          ctx.out.line(`No audit events of ${who} for ${visible(repository)}.`);
        } else {
          ctx.out.line(
            `Latest audit events of ${who} for ${visible(repository)} (refusals first; \`gatehouse audit --request-id <id>\` shows one):`,
          );
          for (const e of recent) ctx.out.line(visible(eventLine(e, e.reference ?? e.digest ?? '')));
        }
        if (logins.length > 0) {
          ctx.out.line('');
          ctx.out.line(
            `Refused logins of ${who} (credentials are checked before any target is named, so these are not events of ${visible(repository)}):`,
          );
          for (const e of logins) ctx.out.line(visible(eventLine(e, 'login')));
        }
      }
      // Exit 1 with one line on stderr; stdout keeps the explanation (and stays valid JSON).
      if (!verdict.allowed) throw new CliError(`${who} cannot ${verb} ${ref} (${verdict.reason})`, 1);
    });
}

/**
 * One audit row as explain prints it: time, action, what, outcome (reason) status, request id,
 * and the client's request id and a mirror's member tag when recorded.
 */
function eventLine(
  e: {
    occurredAt: Date;
    action: string;
    outcome: string;
    reason: string | null;
    httpStatus: number | null;
    requestId: string | null;
    clientRequestId?: string | null;
    clientMemberTag?: string | null;
  },
  what: string,
): string {
  const reason = e.reason ? ` (${e.reason})` : '';
  const status = e.httpStatus ? ` ${e.httpStatus}` : '';
  const client = e.clientRequestId ? `  client-request ${visible(e.clientRequestId)}` : '';
  const tag = e.clientMemberTag ? `  member-tag ${visible(e.clientMemberTag)}` : '';
  return `  ${e.occurredAt.toISOString()}  ${e.action}  ${what}  ${e.outcome}${reason}${status}  ${e.requestId ?? ''}${client}${tag}`.trimEnd();
}
