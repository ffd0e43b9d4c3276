import { Controller, Delete, Get, HttpCode, Inject, Param, Req, UsePipes } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { BACKOFFICE_SIGN_IN_MANAGER, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { sessionOf, type BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { PasskeyResponse, toPasskeyResponse, documented } from './passkey.dto.js';

/** Admins see and remove a user's passkeys (e.g. a lost device). */
@ApiTags('passkeys')
@Controller('users/:id/passkeys')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize({ groups: ['admin'] })
export class PasskeysAdminController {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
  ) {}

  private async userOr404(id: string): Promise<BackOfficeUser> {
    if (!this.userManager.supportsUserPasskeys) throw BackOfficeHttpError.notFound('Passkeys are not enabled.');
    const user = await this.userManager.findById(id);
    if (!user) throw BackOfficeHttpError.notFound('No such user.');
    return user;
  }

  @Get()
  @ApiOkResponse({ type: [PasskeyResponse] })
  @documented(401, 'unauthenticated')
  @documented(403, 'forbidden: not an admin')
  @documented(404, 'not_found: no such user, or passkeys are not enabled')
  async list(@Param('id') id: string): Promise<PasskeyResponse[]> {
    return (await this.userManager.getPasskeys(await this.userOr404(id))).map(toPasskeyResponse);
  }

  @Delete(':passkeyId')
  @HttpCode(204)
  @RequiresRecentSignIn()
  @ApiResponse({ status: 204, description: "Removed (backoffice.user.passkey.removed, performed by the admin); the user's sessions end" })
  @documented(403, 'forbidden (not an admin) or xsrf_failed')
  @documented(404, 'not_found: no such user or passkey')
  async remove(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string, @Param('passkeyId') passkeyId: string): Promise<void> {
    const user = await this.userOr404(id);
    // A lost or stolen device: the sessions it opened end with the passkey (a new security stamp). An admin who
    // removes a passkey of their own here keeps the session they do it from, as on the account route.
    const keep = user.id === request.backOffice.user.id ? sessionOf(request).id : null;
    const work = () => this.userManager.removePasskey(user, passkeyId);
    const removed = keep ? await this.signInManager.keepSignedInThrough(keep, work) : await work();
    if (!removed) throw BackOfficeHttpError.notFound('No such passkey.');
    await this.signInManager.refreshSignIn(user, keep);
  }
}
