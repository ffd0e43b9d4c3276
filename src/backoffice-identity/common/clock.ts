import { Injectable } from '@nestjs/common';

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
