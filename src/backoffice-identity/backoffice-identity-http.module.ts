import { Module, type Type, UseFilters } from '@nestjs/common';
import { BackOfficeExceptionFilter } from './http/backoffice-exception.filter.js';
import { AuditController } from './audit/audit.controller.js';
import { AuthController } from './auth/auth.controller.js';
import { PasswordResetController } from './auth/password-reset.controller.js';
import { InviteAcceptController } from './invites/invite-accept.controller.js';
import { UsersController } from './users/users.controller.js';
import { GroupsController } from './groups/groups.controller.js';
import { ApiUsersController } from './api-users/api-users.controller.js';
import { TokenController } from './api-users/token.controller.js';
import { AccountController } from './users/account.controller.js';
import { TwoFactorController } from './two-factor/two-factor.controller.js';
import { BackOfficeUiController } from './ui/ui.controller.js';
import { PasskeySignInController } from './passkeys/passkey-sign-in.controller.js';
import { PasskeysController } from './passkeys/passkeys.controller.js';
import { PasskeysAdminController } from './passkeys/passkeys-admin.controller.js';
import { PasskeyReauthenticationController } from './passkeys/passkey-reauthentication.controller.js';

import { ExternalLoginController } from './external-logins/external-login.controller.js';

/** The module's controllers: the REST routes and the sign-in screens. */
export const BACKOFFICE_HTTP_CONTROLLERS: Type<unknown>[] = [
  AuthController,
  PasswordResetController,
  InviteAcceptController,
  TwoFactorController,
  ApiUsersController,
  PasskeySignInController,
  PasskeysController,
  PasskeysAdminController,
  PasskeyReauthenticationController,
  UsersController,
  GroupsController,
  AuditController,
  TokenController,
  AccountController,
  ExternalLoginController,
  BackOfficeUiController,
];

// The module's error shape applies to its own controllers (whatever global filters the host app has).
for (const controller of BACKOFFICE_HTTP_CONTROLLERS) UseFilters(BackOfficeExceptionFilter)(controller);

/** The REST controllers and the sign-in screens; mounted under `routePrefix` by `BackOfficeIdentityModule`. */
@Module({ controllers: BACKOFFICE_HTTP_CONTROLLERS })
export class BackOfficeIdentityHttpModule {}
