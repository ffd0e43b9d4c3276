import { Inject, Injectable } from '@nestjs/common';
import { BackOfficeBackgroundTasks } from '../common/background-tasks.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BACKOFFICE_CLOCK } from '../constants.js';
import type { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { UserAccessDeniedNotification } from '../notifications/notifications.js';
import { NotificationPublisher } from '../notifications/notification-publisher.service.js';

/**
 * Records refused access decisions (OWASP ASVS 4.0 7.2.2: every failed access control decision is logged): the
 * guard's 403 `forbidden` and `xsrf_failed`, and the group rules' refusals to act on a user or group beyond
 * what the caller holds. Each refusal publishes `backoffice.user.access-denied` (the audit listener writes it)
 * with the performing user, IP, method and path of the current request. It is published after the response,
 * so a refusal costs the caller no time and the checks that refuse stay synchronous.
 */
@Injectable()
export class BackOfficeAccessDenials {
  constructor(
    @Inject(NotificationPublisher) private readonly notifications: NotificationPublisher,
    @Inject(BackOfficeBackgroundTasks) private readonly tasks: BackOfficeBackgroundTasks,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {}

  /**
   * Records `error` (a 403) as a refusal of the current request's user, acting on `affectedUserId` if given,
   * and returns it: `throw denials.refuse(BackOfficeHttpError.forbidden())`.
   */
  refuse(error: BackOfficeHttpError, affectedUserId: string | null = null): BackOfficeHttpError {
    const context = BackOfficeRequestContextStore.current();
    const notification = new UserAccessDeniedNotification({
      ipAddress: context.ipAddress ?? null,
      performingUserId: context.performingUserId ?? null,
      affectedUserId,
      dateTimeUtc: this.clock.now(),
      reason: error.code,
      method: context.method ?? null,
      path: context.path ?? null,
      message: error.message,
    });
    this.tasks.run(`Recording the refusal of ${notification.method ?? ''} ${notification.path ?? ''}`, () => this.notifications.publish(notification));
    return error;
  }
}
