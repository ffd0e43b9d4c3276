import { EventEmitter2 } from '@nestjs/event-emitter';
import type { INestApplication } from '@nestjs/common';
import type { BackOfficeNotification } from '../../src/backoffice-identity/index.js';

/** Records every back-office notification the app emits. */
export class NotificationRecorder {
  readonly events: BackOfficeNotification[] = [];
  private readonly listener = (_name: string | string[], payload: unknown) => {
    if (payload && typeof payload === 'object' && 'eventName' in payload) this.events.push(payload as BackOfficeNotification);
  };

  constructor(private readonly emitter: EventEmitter2) {
    emitter.onAny(this.listener);
  }

  static attach(app: INestApplication): NotificationRecorder {
    return new NotificationRecorder(app.get(EventEmitter2));
  }

  named(eventName: string, affectedUserId?: string): BackOfficeNotification[] {
    return this.events.filter((e) => e.eventName === eventName && (affectedUserId === undefined || e.affectedUserId === affectedUserId));
  }

  clear(): void {
    this.events.length = 0;
  }

  detach(): void {
    this.emitter.offAny(this.listener);
  }
}
