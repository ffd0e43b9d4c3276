import { Module } from '@nestjs/common';
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

/** The REST controllers and the sign-in screens; mounted under `routePrefix` by `BackOfficeIdentityModule`. */
@Module({
  controllers: [
    AuthController,
    PasswordResetController,
    InviteAcceptController,
    TwoFactorController,
    ApiUsersController,
    UsersController,
    GroupsController,
    AuditController,
    TokenController,
    AccountController,
    BackOfficeUiController,
  ],
})
export class BackOfficeIdentityHttpModule {}
