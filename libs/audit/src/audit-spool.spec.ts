import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '@gatehouse/observability';
import { AuditEvent } from './audit-event.entity';
import { AuditSpool, parseSpoolText, spoolLine } from './audit-spool';

function event(n: number): AuditEvent {
  return Object.assign(new AuditEvent(), {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    occurredAt: new Date(Date.UTC(2030, 0, 1, 0, 0, n)),
    action: 'blob.get',
    outcome: 'allowed',
    requestId: `r${n}`,
    details: { n, text: 'line\nbreak "quoted"' },
  });
}

const options = (dir: string) => ({
  dir,
  maxBytes: 1024 * 1024,
  segmentMaxBytes: 2_000,
  lockStaleMs: 60_000,
});

describe('AuditSpool', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-spool-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips events as one JSON line each, dates included', () => {
    const text = [1, 2].map((n) => spoolLine(event(n))).join('');
    expect(text.split('\n')).toHaveLength(3);
    const { events, torn } = parseSpoolText(text);
    expect(torn).toBe(0);
    expect(events).toEqual([event(1), event(2)]);
    expect(events[0].occurredAt).toBeInstanceOf(Date);
  });

  it('skips and counts a torn last line and lines that are not events', () => {
    const whole = spoolLine(event(1)) + spoolLine(event(2));
    const torn = spoolLine(event(3)).slice(0, 40);
    expect(parseSpoolText(whole + torn)).toMatchObject({ torn: 1, events: [event(1), event(2)] });
    expect(parseSpoolText(whole + '{"id":"x"}\n').torn).toBe(1);
  });

  it('appends durably into segments, rotates them by size and replays oldest first', async () => {
    const spool = new AuditSpool(options(dir));
    expect(spool.acquire()).toBe(true);
    for (let n = 0; n < 12; n++) await spool.append([spoolLine(event(n))]);
    spool.appendSync([spoolLine(event(12))]);
    await spool.sync();
    spool.seal();
    const segments = spool.segments();
    expect(segments.length).toBeGreaterThan(1);
    expect(spool.bytes).toBe(segments.reduce((s, x) => s + x.bytes, 0));
    const replayed: AuditEvent[] = [];
    for (const s of spool.sealedSegments()) {
      replayed.push(...(await spool.read(s.file)).events);
      await spool.remove(s);
    }
    expect(replayed.map((e) => e.requestId)).toEqual([...Array(13).keys()].map((n) => `r${n}`));
    expect(spool.segments()).toEqual([]);
    expect(spool.bytes).toBe(0);
    spool.release();
  });

  it('has one owner at a time, and a lock of a process that is gone is taken over', () => {
    const a = new AuditSpool(options(dir));
    const b = new AuditSpool(options(dir));
    expect(a.acquire()).toBe(true);
    expect(b.acquire()).toBe(false);
    a.release();
    expect(b.acquire()).toBe(true);
    b.release();

    // A crashed owner on this host: its pid no longer runs.
    fs.writeFileSync(
      path.join(dir, 'owner.lock'),
      JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), instance: 'deadbeef' }),
    );
    const c = new AuditSpool(options(dir));
    expect(c.acquire()).toBe(true);
    c.release();

    // Another host's lock is respected until it goes stale.
    fs.writeFileSync(
      path.join(dir, 'owner.lock'),
      JSON.stringify({ pid: 1, host: 'elsewhere', instance: 'x' }),
    );
    // The lock's age is read on the spool's clock: nobody waits a minute for it to go stale.
    const clock = new ManualClock(fs.statSync(path.join(dir, 'owner.lock')).mtimeMs);
    const d = new AuditSpool(options(dir), clock);
    expect(d.acquire()).toBe(false);
    clock.advance(59_000);
    expect(d.acquire()).toBe(false);
    clock.advance(2_000);
    expect(d.acquire()).toBe(true);
    d.release();
  });

  it('names segments by the time on its clock, so a name sort is a time sort', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const spool = new AuditSpool({ ...options(dir), segmentMaxBytes: 10 }, clock);
    spool.acquire();
    await spool.append([spoolLine(event(1))]);
    clock.advance(1_000);
    spool.seal();
    await spool.append([spoolLine(event(2))]);
    spool.seal();
    const names = spool.segments().map((s) => path.basename(s.file).split('-')[0]);
    expect(names).toEqual(
      [String(Date.UTC(2030, 0, 1)), String(Date.UTC(2030, 0, 1) + 1_000)].map((n) => n.padStart(15, '0')),
    );
    spool.release();
  });

  it('reports when lines would pass the byte bound', () => {
    const spool = new AuditSpool({ ...options(dir), maxBytes: 100 });
    expect(spool.hasRoomFor(['x'])).toBe(false); // not owned yet
    spool.acquire();
    expect(spool.hasRoomFor(['x'.repeat(100)])).toBe(true);
    expect(spool.hasRoomFor(['x'.repeat(101)])).toBe(false);
    spool.release();
  });
});
