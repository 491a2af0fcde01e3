import { Injectable } from '@nestjs/common';

/** Wall-clock time for token expiry and the readiness cache; replaced in tests. */
@Injectable()
export class UpstreamClock {
  now(): number {
    return Date.now();
  }
}
