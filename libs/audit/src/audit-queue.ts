/**
 * FIFO with a hard bound. The writer reads a batch with `peek`, and only `remove`s it once the
 * batch is stored, so a failed write loses nothing. Entries are numbered so a caller can wait for
 * "everything queued so far".
 */
export class AuditQueue<T> {
  private items: T[] = [];
  private head = 0;
  private enqueued = 0;
  private removed = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Sequence number of the last entry accepted. */
  get lastEnqueued(): number {
    return this.enqueued;
  }

  /** Sequence number of the last entry removed (written). */
  get lastRemoved(): number {
    return this.removed;
  }

  /** False (and the item is not kept) when the queue is full. */
  push(item: T): boolean {
    if (this.length >= this.capacity) return false;
    this.items.push(item);
    this.enqueued++;
    return true;
  }

  peek(max: number): T[] {
    return this.items.slice(this.head, this.head + max);
  }

  remove(count: number): void {
    const n = Math.min(count, this.length);
    this.head += n;
    this.removed += n;
    // Compact once the consumed prefix dominates, keeping push and remove amortised O(1).
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
