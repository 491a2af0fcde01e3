import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Clock } from '@gatehouse/observability';
import { AuditEvent } from './audit-event.entity';

/** Segment files: `<ms since epoch, 15 digits>-<instance>-<n>.jsonl`, so a name sort is a time sort. */
const SEGMENT_RE = /^\d{15}-[0-9a-f]{8}-\d+\.jsonl$/;
const LOCK_FILE = 'owner.lock';
/** Tells this process from an earlier one that had the same pid (pid 1 in a restarted container). */
const PROCESS_TOKEN = randomUUID();

export interface SpoolOptions {
  dir: string;
  /** Beyond this many bytes on disk nothing more is spooled. */
  maxBytes: number;
  /** A segment is closed and a new one started past this size. */
  segmentMaxBytes: number;
  /** A lock not refreshed for this long belongs to a dead process, whatever its pid says. */
  lockStaleMs: number;
}

export interface SpoolSegment {
  file: string;
  bytes: number;
}

export interface ReadSegment {
  events: AuditEvent[];
  /** Lines that did not parse: a line torn by a crash while it was written. */
  torn: number;
}

interface LockContent {
  pid: number;
  host: string;
  process: string;
  instance: string;
}

/**
 * The append-only disk spool that holds audit events while PostgreSQL is unreachable: JSON lines in
 * segment files under one directory, each event with its uuid so a replay is idempotent.
 *
 * One process owns a spool directory at a time (`owner.lock`): the owner alone appends and
 * replays, so a segment is never deleted while someone still writes to it. Another process on
 * the same data directory (the CLI next to a running gateway) works without a spool.
 */
export class AuditSpool {
  readonly instance = randomUUID().slice(0, 8);
  private owned = false;
  private current: { fd: number; file: string; bytes: number; dirty: boolean } | null = null;
  private segmentCounter = 0;
  private knownBytes = 0;
  private lockTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly options: SpoolOptions,
    private readonly clock: Clock = new Clock(),
  ) {}

  get isOwner(): boolean {
    return this.owned;
  }

  /** Bytes in all segments (as last counted), the bound `maxBytes` is checked against. */
  get bytes(): number {
    return this.knownBytes;
  }

  /**
   * Takes ownership of the directory unless a live process holds it. Returns whether it did.
   * A lock is taken over when its owner is gone: same host and a pid that no longer runs (or our
   * own pid held by an earlier process, a restarted container's pid 1), or a lock not refreshed
   * for `lockStaleMs`.
   */
  acquire(): boolean {
    if (this.owned) return true;
    fs.mkdirSync(this.options.dir, { recursive: true, mode: 0o700 });
    const lock = path.join(this.options.dir, LOCK_FILE);
    const mine: LockContent = {
      pid: process.pid,
      host: os.hostname(),
      process: PROCESS_TOKEN,
      instance: this.instance,
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(lock, JSON.stringify(mine), { flag: 'wx', mode: 0o600 });
        this.owned = true;
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (!this.lockIsStale(lock)) return false;
        fs.rmSync(lock, { force: true });
      }
    }
    if (!this.owned) return false;
    this.knownBytes = this.segments().reduce((sum, s) => sum + s.bytes, 0);
    // Refreshing the lock's mtime tells other processes that its owner is alive.
    this.lockTimer = setInterval(
      () => {
        const now = new Date();
        fs.promises.utimes(lock, now, now).catch(() => undefined);
      },
      Math.max(1_000, Math.floor(this.options.lockStaleMs / 4)),
    );
    this.lockTimer.unref();
    return true;
  }

  /** Closes the open segment and gives up the directory. */
  release(): void {
    this.seal();
    if (this.lockTimer) clearInterval(this.lockTimer);
    this.lockTimer = null;
    if (!this.owned) return;
    this.owned = false;
    const lock = path.join(this.options.dir, LOCK_FILE);
    try {
      const held = JSON.parse(fs.readFileSync(lock, 'utf8')) as LockContent;
      if (held.instance === this.instance) fs.rmSync(lock, { force: true });
    } catch {
      // Already gone or replaced: not ours to remove.
    }
  }

  /** Whether `events` more lines fit under the byte bound (an estimate is enough). */
  hasRoomFor(lines: string[]): boolean {
    const size = lines.reduce((sum, l) => sum + Buffer.byteLength(l), 0);
    return this.owned && this.knownBytes + size <= this.options.maxBytes;
  }

  /** Appends lines and fsyncs them before resolving: after that they survive a crash. */
  async append(lines: string[]): Promise<void> {
    const seg = this.open();
    const buf = Buffer.from(lines.join(''));
    const handle = seg.fd;
    await new Promise<void>((resolve, reject) =>
      fs.write(handle, buf, 0, buf.length, null, (err, written) =>
        err
          ? reject(err)
          : written !== buf.length
            ? reject(new Error('short write to the audit spool'))
            : resolve(),
      ),
    );
    seg.bytes += buf.length;
    this.knownBytes += buf.length;
    await new Promise<void>((resolve, reject) => fs.fsync(handle, (err) => (err ? reject(err) : resolve())));
    seg.dirty = false;
    if (seg.bytes >= this.options.segmentMaxBytes) this.seal();
  }

  /**
   * Appends without waiting (for the rare overflow of the memory queue on the request path).
   * The next `append` or `sync` makes it durable.
   */
  appendSync(lines: string[]): void {
    const seg = this.open();
    const buf = Buffer.from(lines.join(''));
    fs.writeSync(seg.fd, buf);
    seg.bytes += buf.length;
    this.knownBytes += buf.length;
    seg.dirty = true;
  }

  /** fsyncs lines written by `appendSync`. */
  async sync(): Promise<void> {
    const seg = this.current;
    if (!seg?.dirty) return;
    await new Promise<void>((resolve, reject) => fs.fsync(seg.fd, (err) => (err ? reject(err) : resolve())));
    seg.dirty = false;
  }

  /** Closes the segment being appended to, so it can be replayed and deleted. */
  seal(): void {
    const seg = this.current;
    if (!seg) return;
    this.current = null;
    try {
      if (seg.dirty) fs.fsyncSync(seg.fd);
    } finally {
      fs.closeSync(seg.fd);
    }
  }

  /** Segment files, oldest first (the open one included). */
  segments(): SpoolSegment[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.options.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return names
      .filter((n) => SEGMENT_RE.test(n))
      .sort()
      .map((n) => {
        const file = path.join(this.options.dir, n);
        return { file, bytes: fs.statSync(file).size };
      });
  }

  /** Segments that are closed and may be replayed: all except the one being appended to. */
  sealedSegments(): SpoolSegment[] {
    return this.segments().filter((s) => s.file !== this.current?.file);
  }

  async read(file: string): Promise<ReadSegment> {
    const text = await fs.promises.readFile(file, 'utf8');
    return parseSpoolText(text);
  }

  /** Deletes a replayed segment (its rows are committed). */
  async remove(segment: SpoolSegment): Promise<void> {
    await fs.promises.rm(segment.file, { force: true });
    this.knownBytes = Math.max(0, this.knownBytes - segment.bytes);
  }

  private open(): NonNullable<AuditSpool['current']> {
    if (!this.owned) throw new Error('the audit spool is owned by another process');
    if (this.current) return this.current;
    const name = `${String(this.clock.now()).padStart(15, '0')}-${this.instance}-${this.segmentCounter++}.jsonl`;
    const file = path.join(this.options.dir, name);
    const fd = fs.openSync(file, 'a', 0o600);
    this.current = { fd, file, bytes: 0, dirty: false };
    return this.current;
  }

  private lockIsStale(lock: string): boolean {
    let held: LockContent;
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(lock).mtimeMs;
      held = JSON.parse(fs.readFileSync(lock, 'utf8')) as LockContent;
    } catch (e) {
      // Vanished (the owner released it) or half-written by a crash: try again / take it over.
      return (e as NodeJS.ErrnoException).code === 'ENOENT' || e instanceof SyntaxError;
    }
    if (this.clock.now() - mtimeMs > this.options.lockStaleMs) return true;
    if (held.host !== os.hostname()) return false;
    if (held.pid === process.pid) return held.process !== PROCESS_TOKEN;
    try {
      process.kill(held.pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}

/** One line of the spool: the event as JSON, newline-terminated. */
export function spoolLine(event: AuditEvent): string {
  return JSON.stringify(event) + '\n';
}

/** Parses spool text; a line that is not a whole event is counted as torn and skipped. */
export function parseSpoolText(text: string): ReadSegment {
  const events: AuditEvent[] = [];
  let torn = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const event = parseSpoolLine(line);
    if (event) events.push(event);
    else torn++;
  }
  return { events, torn };
}

function parseSpoolLine(line: string): AuditEvent | null {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (
    typeof raw !== 'object' ||
    raw === null ||
    typeof raw.id !== 'string' ||
    typeof raw.action !== 'string' ||
    typeof raw.outcome !== 'string' ||
    typeof raw.occurredAt !== 'string'
  )
    return null;
  const occurredAt = new Date(raw.occurredAt);
  if (Number.isNaN(occurredAt.getTime())) return null;
  return Object.assign(new AuditEvent(), raw, { occurredAt });
}
