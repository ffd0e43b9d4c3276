import { Injectable } from '@nestjs/common';

/** Clock difference allowed between another party (an OpenID provider) and this server for the times it sends (5 minutes). */
export const MAX_CLOCK_SKEW_SECONDS = 300;

/** Source of the current time. Override `BACKOFFICE_CLOCK` in tests to move time. */
export interface BackOfficeClock {
  now(): Date;
}

@Injectable()
export class SystemClock implements BackOfficeClock {
  now(): Date {
    return new Date();
  }
}
