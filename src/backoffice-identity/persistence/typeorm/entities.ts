import { BackOfficeAuditEntryEntity } from './audit/backoffice-audit-entry.entity.js';
import { BackOfficeSessionEntity } from './sessions/backoffice-session.entity.js';
import { BackOfficeGroupEntity } from './users/entities/backoffice-group.entity.js';
import { BackOfficeLoginAttemptEntity } from './users/entities/backoffice-login-attempt.entity.js';
import { BackOfficeUserTokenEntity } from './users/entities/backoffice-user-token.entity.js';
import { BackOfficeUserEntity } from './users/entities/backoffice-user.entity.js';

/** Every entity of the module: pass them to your DataSource (or use `autoLoadEntities: true`). */
export const backOfficeIdentityEntities = [
  BackOfficeUserEntity,
  BackOfficeGroupEntity,
  BackOfficeUserTokenEntity,
  BackOfficeLoginAttemptEntity,
  BackOfficeSessionEntity,
  BackOfficeAuditEntryEntity,
];
