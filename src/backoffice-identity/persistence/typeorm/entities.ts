import { BackOfficeAuditEntryEntity } from './entities/backoffice-audit-entry.entity.js';
import { BackOfficeSessionEntity } from './entities/backoffice-session.entity.js';
import { BackOfficeGroupEntity } from './entities/backoffice-group.entity.js';
import { BackOfficeLoginAttemptEntity } from './entities/backoffice-login-attempt.entity.js';
import { BackOfficeUserTokenEntity } from './entities/backoffice-user-token.entity.js';
import { BackOfficeUserEntity } from './entities/backoffice-user.entity.js';

/** Every entity of the module: pass them to your DataSource (or use `autoLoadEntities: true`). */
export const backOfficeIdentityEntities = [
  BackOfficeUserEntity,
  BackOfficeGroupEntity,
  BackOfficeUserTokenEntity,
  BackOfficeLoginAttemptEntity,
  BackOfficeSessionEntity,
  BackOfficeAuditEntryEntity,
];
