import { BackOfficeIdentityInitial1732300000000 } from './1732300000000-backoffice-identity-initial.js';
import { BackOfficeIdentityTwoFactor1732400000000 } from './1732400000000-backoffice-identity-two-factor.js';
import { BackOfficeIdentityHardening1732500000000 } from './1732500000000-backoffice-identity-hardening.js';
import { BackOfficeIdentityPasskeys1732550000000 } from './1732550000000-backoffice-identity-passkeys.js';
import { BackOfficeIdentityExternalLogins1732510000000 } from './1732510000000-backoffice-identity-external-logins.js';
import { BackOfficeIdentityGroupPermissions1732560000000 } from './1732560000000-backoffice-identity-group-permissions.js';
import { BackOfficeIdentityApiUsers1732560000001 } from './1732560000001-backoffice-identity-api-users.js';
import { BackOfficeIdentityEnforcedTwoFactor1732560000002 } from './1732560000002-backoffice-identity-enforced-two-factor.js';
import { BackOfficeIdentityUserLifecycle1732560000003 } from './1732560000003-backoffice-identity-user-lifecycle.js';
import { BackOfficeIdentityAuditAndListIndexes1732570000000 } from './1732570000000-backoffice-identity-audit-and-list-indexes.js';
import { BackOfficeIdentitySessionNextStamp1732580000000 } from './1732580000000-backoffice-identity-session-next-stamp.js';
import { BackOfficeIdentityDirectoryManaged1732590000000 } from './1732590000000-backoffice-identity-directory-managed.js';
import { BackOfficeIdentitySessionNextStamps1732600000000 } from './1732600000000-backoffice-identity-session-next-stamps.js';
import { BackOfficeIdentityPasswordResetForced1732610000000 } from './1732610000000-backoffice-identity-password-reset-forced.js';
import { BackOfficeIdentityExternalLoginStateUser1732620000000 } from './1732620000000-backoffice-identity-external-login-state-user.js';
import { BackOfficeIdentityPasskeyChallengeUserIndex1732630000000 } from './1732630000000-backoffice-identity-passkey-challenge-user-index.js';
import { BackOfficeIdentityTokenHandOverPending1732640000000 } from './1732640000000-backoffice-identity-token-hand-over-pending.js';

/** Every migration of the module, oldest first: spread them into your DataSource's `migrations`. */
export const backOfficeIdentityMigrations = [
  BackOfficeIdentityInitial1732300000000,
  BackOfficeIdentityTwoFactor1732400000000,
  BackOfficeIdentityHardening1732500000000,
  BackOfficeIdentityPasskeys1732550000000,
  BackOfficeIdentityExternalLogins1732510000000,
  BackOfficeIdentityGroupPermissions1732560000000,
  BackOfficeIdentityApiUsers1732560000001,
  BackOfficeIdentityEnforcedTwoFactor1732560000002,
  BackOfficeIdentityUserLifecycle1732560000003,
  BackOfficeIdentityAuditAndListIndexes1732570000000,
  BackOfficeIdentitySessionNextStamp1732580000000,
  BackOfficeIdentityDirectoryManaged1732590000000,
  BackOfficeIdentitySessionNextStamps1732600000000,
  BackOfficeIdentityPasswordResetForced1732610000000,
  BackOfficeIdentityExternalLoginStateUser1732620000000,
  BackOfficeIdentityPasskeyChallengeUserIndex1732630000000,
  BackOfficeIdentityTokenHandOverPending1732640000000,
];
