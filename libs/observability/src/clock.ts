import { Injectable } from '@nestjs/common';

/** Time as an injectable edge, so expiry, TTL and staleness rules are testable without sleeping. */
@Injectable()
export class Clock {
  now(): number {
    return Date.now();
  }

  /** The same instant as a Date (for entity timestamps and expiry comparisons). */
  date(): Date {
    return new Date(this.now());
  }
}

/** A clock tests move by hand. */
export class ManualClock extends Clock {
  constructor(private current = Date.UTC(2026, 0, 1)) {
    super();
  }
  override now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}
