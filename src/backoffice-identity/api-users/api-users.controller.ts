import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res, UsePipes } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponse } from '../auth/auth.dto.js';
import type { BackOfficeClock } from '../common/clock.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_USER_MANAGER } from '../constants.js';
import { BackOfficeGroupService } from '../groups/backoffice-group.service.js';
import { mayAssignAsStored, mayManageAsStored } from '../groups/may-manage-as-stored.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { BackOfficeHttpPlatform, type BackOfficeHttpResponse } from '../http/http-platform.js';
import { LIST_PAGE_RESPONSE_HEADERS, ListPageQuery, nextPageLink, rowsFollow } from '../http/list-page.js';
import { mayManageTargetErrors, permissionErrors } from '../permissions/permission-errors.decorator.js';
import type { BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import { toBackOfficeUserDto, type BackOfficeUserDto } from '../users/backoffice-user.js';
import type { BackOfficeUserManager } from '../users/backoffice-user-manager.js';
import { ApiUserCreatedResponse, ApiUserListResponse, CreateApiUserDto, RotateSecretDto, SecretRotatedResponse } from './api-users.dto.js';
import { BackOfficeApiUserService, type BackOfficeApiUserView } from './backoffice-api-user.service.js';

/**
 * API users (machines): create, list, rotate secrets. `users.manage`. Disable/enable/groups go through `/users/:id/...`.
 * Creating one and rotating a secret mint a lasting credential: they need a recent sign-in (`@RequiresRecentSignIn()`),
 * so a stolen admin cookie is not enough, and a bearer token (no sign-in to renew) is refused there.
 */
@ApiTags('users')
@Controller('users/api')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize({ permissions: ['users.manage'] })
export class ApiUsersController {
  constructor(
    @Inject(BackOfficeApiUserService) private readonly apiUsers: BackOfficeApiUserService,
    @Inject(BackOfficeGroupService) private readonly groups: BackOfficeGroupService,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
  ) {}

  @Post()
  @HttpCode(201)
  @RequiresRecentSignIn()
  @ApiCreatedResponse({ type: ApiUserCreatedResponse, description: 'The secret is shown this once' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (unknown group, blank or long name)' })
  @permissionErrors('users.manage')
  async create(
    @Req() request: BackOfficeAuthenticatedRequest,
    @Body() body: CreateApiUserDto,
  ): Promise<{ user: BackOfficeUserDto; clientId: string; clientSecret: string }> {
    await this.groups.assertMayAssign(request.backOffice.user, body.groups);
    const name = body.name.trim();
    // Again on the groups as stored when the membership is written: a permission added to one of them meanwhile
    // (PUT /groups/:alias) is not the caller's to hand out. A caller in admin may assign any group: no re-check.
    const created = await this.apiUsers.create({ name: name || body.name, groups: body.groups }, mayAssignAsStored(this.groups, request.backOffice.user));
    return { user: toBackOfficeUserDto(created.user, this.clock.now()), clientId: created.clientId, clientSecret: created.clientSecret };
  }

  @Get()
  @ApiOkResponse({ type: ApiUserListResponse, headers: LIST_PAGE_RESPONSE_HEADERS, description: 'Every API user unless there are more than `take` (default and largest 1000); then a page and a `Link: <...>; rel="next"` header' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (skip or take)' })
  @permissionErrors('users.manage')
  async list(
    @Query() query: ListPageQuery,
    @Res({ passthrough: true }) response: BackOfficeHttpResponse,
  ): Promise<{ items: BackOfficeApiUserView[]; total: number; totalExact: boolean }> {
    const page = await this.apiUsers.listPage(query);
    const next = rowsFollow(query, page.items.length, page.total) ? nextPageLink(query) : undefined;
    if (next) this.platform.setHeader(response, 'Link', next);
    return page;
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: SecretRotatedResponse, description: 'A new secret (shown once); the previous one works for overlapMinutes' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (overlapMinutes)' })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found (no such API user)' })
  @permissionErrors('users.manage')
  async rotate(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string, @Body() body: RotateSecretDto): Promise<SecretRotatedResponse> {
    // A secret is the API user's sign-in: only a caller who may manage that user (assertMayManage) gets a new one.
    const user = await this.userManager.findById(id);
    if (!user || user.kind !== 'api') throw BackOfficeHttpError.notFound('No such API user.');
    this.groups.assertMayManage(request.backOffice.user, user);
    // Again on the API user as stored when the secret is written: a promotion meanwhile is not the caller's to use.
    // A caller in admin may manage anyone: no re-check, and no admin lock (as for /users/:id).
    return this.apiUsers.rotateSecret(id, body.overlapMinutes, mayManageAsStored(this.groups, request.backOffice.user));
  }
}
