import { Controller, Delete, Get, HttpCode, Inject, Param, UsePipes } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { PasskeyResponse, toPasskeyResponse, documented } from './passkey.dto.js';

/** Admins see and remove a user's passkeys (e.g. a lost device). */
@ApiTags('passkeys')
@Controller('users/:id/passkeys')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize({ groups: ['admin'] })
export class PasskeysAdminController {
  constructor(@Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager) {}

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
  @ApiResponse({ status: 204, description: 'Removed (backoffice.user.passkey.removed, performed by the admin)' })
  @documented(403, 'forbidden (not an admin) or xsrf_failed')
  @documented(404, 'not_found: no such user or passkey')
  async remove(@Param('id') id: string, @Param('passkeyId') passkeyId: string): Promise<void> {
    const user = await this.userOr404(id);
    if (!(await this.userManager.removePasskey(user, passkeyId))) throw BackOfficeHttpError.notFound('No such passkey.');
  }
}
