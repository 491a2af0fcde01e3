import { Injectable } from '@nestjs/common';
import semver from 'semver';
import { DataSource } from 'typeorm';
import type { AuditSql, AuditSqlRunner } from './audit-query.sql';

/** What an analytics view looks at: the last `days` UTC days, optionally one repository or member. */
export interface AnalyticsFilters {
  days: number;
  repository?: string;
  username?: string;
  now: Date;
}

export interface DailyActivity {
  day: string;
  pulls: number;
  downloads: number;
  bytes: number;
  cacheHits: number;
  cacheLookups: number;
}

export interface CountBy {
  key: string;
  count: number;
}

export interface VersionAdoption {
  repository: string;
  /** Member → the versions they pulled in the window, newest pull first. */
  members: Array<{ username: string; versions: string[]; current: string }>;
  /** Every version pulled, newest version first (semver where the tags are versions). */
  versions: Array<{ version: string; members: number; pulls: number }>;
  distinctVersions: number;
  /** Members whose latest pull is one of the newest three versions pulled, 0..1 (null: no members). */
  shareOnNewestThree: number | null;
  /** Median over members of the age of the version they last pulled, in days since it was first pulled through the gateway. */
  medianVersionAgeDays: number | null;
}

function scope(f: AnalyticsFilters, values: unknown[]): string {
  let where = '';
  if (f.repository) {
    values.push(f.repository);
    where += ` AND repository = $${values.length}`;
  }
  if (f.username) {
    values.push(f.username);
    where += ` AND username = $${values.length}`;
  }
  return where;
}

/** The first UTC day in the window: today and the `days - 1` before it. */
export function firstDay(f: AnalyticsFilters): string {
  return new Date(f.now.getTime() - (f.days - 1) * 86_400_000).toISOString().slice(0, 10);
}

// The queries read the daily rollups (migration 1790300000001), never audit_events: a statement
// trigger keeps them current, so a month of a busy registry is a few thousand rows.

export function dailyActivitySql(f: AnalyticsFilters): AuditSql {
  const values: unknown[] = [firstDay(f)];
  const text = `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(pulls) AS pulls, sum(downloads) AS downloads,
      sum(bytes) AS bytes, sum(cache_hits) AS cache_hits, sum(cache_lookups) AS cache_lookups
    FROM audit_daily_served WHERE day >= $1::date${scope(f, values)}
    GROUP BY day ORDER BY day`;
  return { text, values };
}

export function pullsBySql(f: AnalyticsFilters, column: 'username' | 'repository'): AuditSql {
  const values: unknown[] = [firstDay(f)];
  const text = `SELECT ${column} AS key, sum(pulls) AS count FROM audit_daily_served
    WHERE day >= $1::date AND pulls > 0 AND ${column} <> ''${scope(f, values)}
    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20`;
  return { text, values };
}

export function refusalsByReasonSql(f: AnalyticsFilters): AuditSql {
  const values: unknown[] = [firstDay(f)];
  const text = `SELECT reason AS key, sum(refusals) AS count FROM audit_daily_refusals
    WHERE day >= $1::date${scope(f, values)}
    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20`;
  return { text, values };
}

export function adoptionSql(f: AnalyticsFilters & { repository: string }): AuditSql {
  const values: unknown[] = [firstDay(f)];
  const text = `SELECT username, reference, sum(pulls) AS pulls, min(first_at) AS first, max(last_at) AS last
    FROM audit_daily_versions WHERE day >= $1::date${scope(f, values)}
    GROUP BY 1, 2`;
  return { text, values };
}

/** Newest first: semver versions (a leading v allowed) by precedence, then other tags by name. */
export function compareVersionsNewestFirst(a: string, b: string): number {
  const va = semver.valid(semver.clean(a, { loose: true }) ?? '');
  const vb = semver.valid(semver.clean(b, { loose: true }) ?? '');
  if (va && vb) return semver.rcompare(va, vb);
  if (va) return -1;
  if (vb) return 1;
  return a < b ? 1 : a > b ? -1 : 0;
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** Replicated's adoption report from the rows of adoptionSql. */
export function versionAdoption(
  repository: string,
  rows: Array<{ username: string; reference: string; pulls: number; first: Date; last: Date }>,
  now: Date,
): VersionAdoption {
  const byMember = new Map<string, typeof rows>();
  const firstSeen = new Map<string, number>();
  const perVersion = new Map<string, { members: Set<string>; pulls: number }>();
  for (const r of rows) {
    byMember.set(r.username, [...(byMember.get(r.username) ?? []), r]);
    firstSeen.set(r.reference, Math.min(firstSeen.get(r.reference) ?? Infinity, r.first.getTime()));
    const v = perVersion.get(r.reference) ?? { members: new Set<string>(), pulls: 0 };
    v.members.add(r.username);
    v.pulls += r.pulls;
    perVersion.set(r.reference, v);
  }
  const versions = [...perVersion.keys()].sort(compareVersionsNewestFirst);
  const newestThree = new Set(versions.slice(0, 3));
  const members = [...byMember.entries()]
    .map(([username, pulled]) => {
      const sorted = [...pulled].sort((a, b) => b.last.getTime() - a.last.getTime());
      return { username, versions: sorted.map((p) => p.reference), current: sorted[0].reference };
    })
    .sort((a, b) => (a.username < b.username ? -1 : 1));
  const onNewest = members.filter((m) => newestThree.has(m.current)).length;
  const ages = members.map((m) => (now.getTime() - firstSeen.get(m.current)!) / 86_400_000);
  return {
    repository,
    members,
    versions: versions.map((v) => ({
      version: v,
      members: perVersion.get(v)!.members.size,
      pulls: perVersion.get(v)!.pulls,
    })),
    distinctVersions: versions.length,
    shareOnNewestThree: members.length ? onNewest / members.length : null,
    medianVersionAgeDays: median(ages),
  };
}

const num = (v: unknown) => Number(v ?? 0);

/** The console's analytics, from the daily rollups. */
export async function auditAnalytics(run: AuditSqlRunner, f: AnalyticsFilters) {
  const [daily, byMember, byRepository, refusals, adoptionRows] = await Promise.all([
    run(dailyActivitySql(f)),
    run(pullsBySql(f, 'username')),
    run(pullsBySql(f, 'repository')),
    run(refusalsByReasonSql(f)),
    f.repository ? run(adoptionSql({ ...f, repository: f.repository })) : Promise.resolve(null),
  ]);
  const counts = (rows: Array<Record<string, unknown>>): CountBy[] =>
    rows.map((r) => ({ key: String(r.key), count: num(r.count) }));
  return {
    daily: daily.map((r): DailyActivity => ({
      day: String(r.day),
      pulls: num(r.pulls),
      downloads: num(r.downloads),
      bytes: num(r.bytes),
      cacheHits: num(r.cache_hits),
      cacheLookups: num(r.cache_lookups),
    })),
    byMember: counts(byMember),
    byRepository: counts(byRepository),
    refusals: counts(refusals),
    adoption:
      adoptionRows && f.repository
        ? versionAdoption(
            f.repository,
            adoptionRows.map((r) => ({
              username: String(r.username),
              reference: String(r.reference),
              pulls: num(r.pulls),
              first: new Date(r.first as string),
              last: new Date(r.last as string),
            })),
            f.now,
          )
        : null,
  };
}

export type AuditAnalytics = Awaited<ReturnType<typeof auditAnalytics>>;

@Injectable()
export class AuditAnalyticsService {
  private readonly run: AuditSqlRunner;

  constructor(dataSource: DataSource) {
    this.run = (sql) => dataSource.query(sql.text, sql.values);
  }

  analytics(filters: AnalyticsFilters): Promise<AuditAnalytics> {
    return auditAnalytics(this.run, filters);
  }
}
