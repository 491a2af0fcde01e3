import { Injectable } from '@nestjs/common';

/** The time source of the auth domain, injectable so tests can move time without sleeping. */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }
  nowMs(): number {
    return Date.now();
  }
}
