import { Controller, Get } from '@nestjs/common';
import { BackOfficeAuthorize, CurrentBackOfficeUser, type BackOfficeUserDto } from 'backoffice-identity';
import { ExternalMailProvider, type SentInvite } from './external-mail.provider.js';

export interface DashboardView {
  greeting: string;
  email: string;
  groups: string[];
}

/** The host app's own back-office pages, behind the module's session guard. */
@Controller('dashboard')
export class DashboardController {
  constructor(private readonly mail: ExternalMailProvider) {}

  /** Any signed-in back-office user; 401 without a session. */
  @Get()
  @BackOfficeAuthorize()
  show(@CurrentBackOfficeUser() user: BackOfficeUserDto): DashboardView {
    return { greeting: `Hello, ${user.name}`, email: user.email, groups: user.groups };
  }

  /** Admins only (403 `forbidden` for others): what the external mail provider was given. */
  @Get('sent-invites')
  @BackOfficeAuthorize({ groups: ['admin'] })
  sentInvites(): { items: SentInvite[] } {
    return { items: this.mail.sent };
  }
}

/** Unprotected liveness probe. */
@Controller('health')
export class HealthController {
  @Get()
  check(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
