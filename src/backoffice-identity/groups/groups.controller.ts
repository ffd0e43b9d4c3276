import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req, Res, UsePipes } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponse } from '../auth/auth.dto.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { BackOfficeHttpPlatform, type BackOfficeHttpResponse } from '../http/http-platform.js';
import { LIST_PAGE_RESPONSE_HEADERS, ListPageQuery, nextPageLink, rowsFollow } from '../http/list-page.js';
import { BackOfficePermissionRegistry, BUILT_IN_PERMISSIONS } from '../permissions/backoffice-permissions.js';
import { BackOfficeAuthorize } from '../sessions/backoffice-authorize.decorator.js';
import type { BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeGroupService, type BackOfficeGroupView } from './backoffice-group.service.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import { CreateGroupDto, DeleteGroupQuery, GROUP_ALIAS_PATTERN, GroupListResponse, GroupResponse, UpdateGroupDto } from './groups.dto.js';
import { groupChangeErrors, permissionErrors } from '../permissions/permission-errors.decorator.js';

/** Groups and their permissions, for holders of `groups.manage`. */
@ApiTags('groups')
@Controller('groups')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize({ permissions: ['groups.manage'] })
export class GroupsController {
  constructor(
    @Inject(BackOfficeGroupService) private readonly groups: BackOfficeGroupService,
    @Inject(BackOfficePermissionRegistry) private readonly registry: BackOfficePermissionRegistry,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
  ) {}

  @Get()
  @ApiOkResponse({
    type: GroupListResponse,
    headers: LIST_PAGE_RESPONSE_HEADERS,
    description: 'Every group unless there are more than `take` (default and largest 1000: past it a page and a `Link: <...>; rel="next"` header), and every permission a group can hold',
  })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (skip or take)' })
  @permissionErrors('groups.manage')
  async list(@Query() query: ListPageQuery, @Res({ passthrough: true }) response: BackOfficeHttpResponse): Promise<GroupListResponse> {
    const builtIn = new Set(BUILT_IN_PERMISSIONS.map((p) => p.key));
    const page = await this.groups.listPage(query);
    const next = rowsFollow(query, page.items.length, page.total) ? nextPageLink(query) : undefined;
    if (next) this.platform.setHeader(response, 'Link', next);
    return {
      ...page,
      permissions: this.registry.all().map((p) => ({ key: p.key, description: p.description, builtIn: builtIn.has(p.key) })),
    };
  }

  @Post()
  @HttpCode(201)
  @ApiCreatedResponse({ type: GroupResponse })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (bad alias, blank or long name, field code `unknown_permission`)' })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: permissions is not empty and the session has no sign-in or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token); nothing is written. A group without permissions needs none',
  })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'duplicate_group (aliases are unique ignoring case)' })
  @permissionErrors('groups.manage')
  @groupChangeErrors()
  create(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: CreateGroupDto): Promise<BackOfficeGroupView> {
    // Its permissions reach whoever a provider's groupMapping or LDAP defaultGroups maps to its alias at their next
    // sign-in: a stolen cookie or an admin API user's bearer token must not be enough (OWASP ASVS 5.0 7.5.3).
    return this.groups.create(body, request.backOffice.user, () => this.sessions.assertRecentSignIn(request.backOffice));
  }

  @Put(':alias')
  @HttpCode(200)
  @ApiOkResponse({ type: GroupResponse, description: 'Renamed and/or permissions replaced; audited with a diff' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (blank or long name, field code `unknown_permission`)' })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: permissions holds one the group does not, or requireTwoFactor turns off for a group with members, and the session has no sign-in or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token); nothing is written',
  })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'admin_group_permissions: admin always holds every permission' })
  @permissionErrors('groups.manage')
  @groupChangeErrors()
  update(@Req() request: BackOfficeAuthenticatedRequest, @Param('alias') alias: string, @Body() body: UpdateGroupDto): Promise<BackOfficeGroupView> {
    // Adding a permission gives it to every member (the caller's own account, say), as PUT /users/:id/groups adding a
    // group does: a stolen cookie or an admin API user's bearer token must not be enough (OWASP ASVS 5.0 7.5.3).
    // Taking permissions away, or a rename, needs none.
    return this.groups.update(GroupsController.checkAlias(alias), body, request.backOffice.user, () =>
      this.sessions.assertRecentSignIn(request.backOffice),
    );
  }

  @Delete(':alias')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Deleted; its members (if any) were added to `moveMembersTo` first' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (moveMembersTo unknown or the same group)' })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: the group has members to move into moveMembersTo and the session has no sign-in or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token); nothing is written',
  })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'builtin_group (admin) or group_has_members (with memberCount)' })
  @permissionErrors('groups.manage')
  @groupChangeErrors()
  async delete(@Req() request: BackOfficeAuthenticatedRequest, @Param('alias') alias: string, @Query() query: DeleteGroupQuery): Promise<void> {
    // Moving members gives each of them the target group (admin, say), as PUT /users/:id/groups adding it does: a stolen
    // cookie or an admin API user's bearer token must not be enough (OWASP ASVS 5.0 7.5.3). An empty group needs none.
    await this.groups.delete(GroupsController.checkAlias(alias), query.moveMembersTo, request.backOffice.user, () =>
      this.sessions.assertRecentSignIn(request.backOffice),
    );
  }

  /** A path segment that cannot be an alias is simply not a group. */
  private static checkAlias(alias: string): string {
    if (!GROUP_ALIAS_PATTERN.test(alias)) throw BackOfficeHttpError.notFound('No such group.');
    return alias;
  }
}
