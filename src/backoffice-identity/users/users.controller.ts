import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req, UsePipes } from '@nestjs/common';
import { ApiAcceptedResponse, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponse, UserResponse } from '../auth/auth.dto.js';
import type { BackOfficeClock } from '../common/clock.js';
import type { IdentityResult } from '../common/identity-result.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_IDENTITY_OPTIONS, BACKOFFICE_SIGN_IN_MANAGER, BACKOFFICE_USER_MANAGER } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import type { BackOfficeSignInManager } from '../sign-in/backoffice-sign-in-manager.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { MAX_LIST_SKIP_TEXT } from '../http/list-offset.js';
import { BackOfficeInviteService, type BackOfficeInviteOutcome } from '../invites/backoffice-invite.service.js';
import { InviteUserDto } from '../invites/invite.dto.js';
import type { BackOfficeAuthenticatedRequest } from '../sessions/backoffice-auth.guard.js';
import { BackOfficeAuthorize, RequiresRecentSignIn } from '../sessions/backoffice-authorize.decorator.js';
import { BackOfficeGroupService } from '../groups/backoffice-group.service.js';
import { mayAssignAsStored, mayManageAsStored } from '../groups/may-manage-as-stored.js';
import { AdminUpdateUserDto, DisableUserDto } from './account.dto.js';
import { BackOfficeUserLifecycleService } from './backoffice-user-lifecycle.service.js';
import { BackOfficeApiUserService } from '../api-users/backoffice-api-user.service.js';
import { mayManageTargetErrors, requirePermissions } from '../permissions/permission-errors.decorator.js';
import { BackOfficeSessionService } from '../sessions/backoffice-session.service.js';
import { toBackOfficeUserDto, type BackOfficeUser, type BackOfficeUserDto, type BackOfficeWriteAuthorizer } from './backoffice-user.js';
import type { BackOfficeUserManager } from './backoffice-user-manager.js';
import { isUserQueryStore } from './stores/user-store.interface.js';
import { BackOfficeUserImporter, type ImportAuthorizer, type ImportRecordToAuthorize } from './import/backoffice-user-importer.js';
import { importRenamesUser, importUpdateTarget, MAX_IMPORT_BATCH, summarizeImport, type ImportConflictMode, type ImportUserResult, type ImportUsersSummary } from './import/user-import.js';
import { ImportUsersDto, ImportUsersResponse, InviteResponse, ListUsersQuery, SetGroupsDto, UserPageResponse } from './users.dto.js';
import { addsAny, twoFactorWeakening } from '../common/grants.js';

/** The existing users one import record meets: the one with its email and the one with its username. */
interface ImportConflicts {
  byEmail: BackOfficeUser | null;
  byUsername: BackOfficeUser | null;
}

/** The conflicts of a record, read once per request and shared by the import's permission check and step-up. */
type ImportConflictLookup = (record: ImportRecordToAuthorize) => Promise<ImportConflicts>;

/**
 * User management, each route behind its permission (`users.read`, `users.invite`, `users.manage`, `sessions.manage`).
 * Every route that acts on another user also checks the target before writing anything
 * (`BackOfficeGroupService.assertMayManage`): outside `admin`, only users holding no more than the caller.
 */
@ApiTags('users')
@Controller('users')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize({ permissions: ['users.manage'] })
export class UsersController {
  constructor(
    @Inject(BACKOFFICE_USER_MANAGER) private readonly userManager: BackOfficeUserManager,
    @Inject(BackOfficeInviteService) private readonly invites: BackOfficeInviteService,
    @Inject(BackOfficeSessionService) private readonly sessions: BackOfficeSessionService,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeGroupService) private readonly groups: BackOfficeGroupService,
    @Inject(BackOfficeApiUserService) private readonly apiUsers: BackOfficeApiUserService,
    @Inject(BackOfficeUserLifecycleService) private readonly lifecycle: BackOfficeUserLifecycleService,
    @Inject(BACKOFFICE_SIGN_IN_MANAGER) private readonly signInManager: BackOfficeSignInManager,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  @Get()
  @ApiOkResponse({ type: UserPageResponse })
  @ApiResponse({ status: 400, type: ErrorResponse, description: `validation_failed (e.g. \`skip\` over ${MAX_LIST_SKIP_TEXT}, \`take\` over 100, a \`filter\` over 256 characters)` })
  @requirePermissions('users.read')
  async list(@Query() query: ListUsersQuery): Promise<{ items: BackOfficeUserDto[]; total: number; totalExact: boolean }> {
    const store = this.userManager.store;
    if (!isUserQueryStore(store)) throw new BackOfficeHttpError(501, 'not_supported', 'The user store cannot list users.');
    const now = this.clock.now();
    const page = await store.list({ skip: query.skip, take: query.take, state: query.state, filter: query.filter, now });
    return { items: page.items.map((u) => toBackOfficeUserDto(u, now)), total: page.total, totalExact: page.totalExact ?? true };
  }

  @Post('invite')
  @HttpCode(201)
  // An invite mints a lasting credential: whoever reads the address sets the password, with the groups given
  // (OWASP ASVS 5.0 7.5.3). A resend goes to the same address and gives no one new access: no step-up there.
  @RequiresRecentSignIn()
  @ApiCreatedResponse({ type: InviteResponse, description: 'Invited; the email went out (or a listener handled it)' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (bad email, unknown group, ...)' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'duplicate_email' })
  @ApiResponse({ status: 502, type: ErrorResponse, description: 'email_failed: the user exists, resend the invite' })
  @requirePermissions('users.invite')
  async invite(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: InviteUserDto): Promise<{ user: BackOfficeUserDto }> {
    await this.groups.assertMayAssign(request.backOffice.user, Array.isArray(body.groups) ? body.groups : []);
    // Again on the groups as stored when the invitee is written: a permission added to one of them meanwhile
    // (PUT /groups/:alias) is not the caller's to hand out. A caller in admin may assign any group: no re-check.
    const result = await this.invites.invite(body, request.backOffice.user, mayAssignAsStored(this.groups, request.backOffice.user));
    if (!result.succeeded) {
      if (result.errors.some((e) => e.code === 'duplicate_email')) {
        throw new BackOfficeHttpError(409, 'duplicate_email', 'A user with this email already exists.');
      }
      throw new BackOfficeHttpError(400, 'validation_failed', 'The invite is not valid.', { errors: [...result.errors] });
    }
    return this.deliveryResponse(result.value!);
  }

  @Post('import')
  @HttpCode(200)
  @ApiOkResponse({ type: ImportUsersResponse, description: 'One result per record, in order; invalid records are reported and not written' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (users not an array, bad onConflict or groupMap)' })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: the import is not a dry run and a record would create a user (whatever onConflict), or with ' +
      'onConflict update give an existing user another password hash, another email address or another username (the two beyond ASCII letter case; ' +
      'a record without a username has its email as username) or a group it is not in, or enable a disabled user (isApproved true), and the session has no sign-in ' +
      'or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token: automation uses the import-users CLI); the ' +
      'whole request is refused and nothing is written. Dry runs, skipped conflicts, invalid records and updates of the profile only (or taking groups away) need no step-up (nor does isApproved false, a disable)',
  })
  @ApiResponse({
    status: 403,
    type: ErrorResponse,
    description:
      'forbidden: a record names a group holding permissions the caller lacks (or admin), or matches an existing user the caller may not manage ' +
      '(onConflict update or skip); the whole request is refused, dry run included, nothing is written, and errors[0].field names the first such record',
  })
  @ApiResponse({ status: 413, type: ErrorResponse, description: `too_many_records (more than ${MAX_IMPORT_BATCH}) or payload_too_large` })
  @requirePermissions('users.manage')
  async importUsers(@Req() request: BackOfficeAuthenticatedRequest, @Body() body: ImportUsersDto): Promise<{ results: ImportUserResult[]; summary: ImportUsersSummary }> {
    if (body.users.length > MAX_IMPORT_BATCH) {
      throw new BackOfficeHttpError(413, 'too_many_records', `Import at most ${MAX_IMPORT_BATCH} users per request (the CLI takes any number).`);
    }
    const options = { dryRun: body.dryRun, onConflict: body.onConflict, groupMap: body.groupMap };
    try {
      BackOfficeUserImporter.resolveOptions(options);
    } catch (error) {
      throw new BackOfficeHttpError(400, 'validation_failed', (error as Error).message.replace(/^importUsers: /, ''));
    }
    const actor = request.backOffice.user;
    const { onConflict, dryRun } = BackOfficeUserImporter.resolveOptions(options);
    const checksPermissions = !this.groups.mayActOnAnyone(actor);
    // A dry run writes nothing, so it may report what an import would do without a step-up.
    const checksStepUp = !dryRun;
    const recordsByIndex = new Map<number, ImportRecordToAuthorize>();
    const check = async (records: readonly ImportRecordToAuthorize[]): Promise<void> => {
      for (const record of records) recordsByIndex.set(record.index, record);
      // Both checks read the same users: each record's are looked up once, when the first check needs them.
      const lookups = new Map<number, Promise<ImportConflicts>>();
      const conflictsOf: ImportConflictLookup = (record) => {
        let found = lookups.get(record.index);
        if (!found) lookups.set(record.index, (found = this.findConflicts(record)));
        return found;
      };
      if (checksPermissions) await this.authorizeImport(actor, onConflict, records, conflictsOf);
      if (checksStepUp) await this.assertStepUpForCredentials(request.backOffice, onConflict, records, conflictsOf);
    };
    // Asked by the store under the batch's locks, with the record's index; a refusal is the first check's, nothing kept.
    // asStoredTarget: every existing user the batch overwrites, as stored before the write. One made an admin meanwhile
    // is not the caller's to overwrite (its password hash, groups, name); a record giving it a group it is not in, or
    // enabling it (as stored, not as read before: a group a concurrent request took away, a disable that committed
    // meanwhile, would be undone), needs a recent sign-in, as PUT /users/:id/groups and POST /users/:id/enable do.
    // asStored: every user written, as stored in the batch's transaction. A permission added to one of its groups
    // meanwhile (PUT /groups/:alias) is not the caller's to hand out; one that was in a group requiring 2FA (as
    // stored under the locks) and is in none as written has the rule weakened, a step-up as PUT /users/:id/groups
    // asks (OWASP ASVS 4.0 2.2.x).
    const refused = (index: number, assert: () => void): void => {
      try {
        assert();
      } catch (error) {
        if (!(error instanceof BackOfficeHttpError)) throw error;
        throw UsersController.importRefused(index, error);
      }
    };
    const stepsUpTargets = checksStepUp && onConflict === 'update';
    const weakensTwoFactor = new Map<number, (written: BackOfficeUser) => boolean>();
    // Neither hook has anything to ask when the caller may act on anyone and no step-up is asked of an overwrite (an
    // admin's skip or fail import, a dry run): without them the store does not read again the users it wrote.
    const asksAsStored = checksPermissions || stepsUpTargets;
    const authorize: ImportAuthorizer = !asksAsStored ? check : Object.assign(check, {
      asStoredTarget: (current: BackOfficeUser, index: number): void => {
        if (checksPermissions) refused(index, () => this.groups.assertMayManage(actor, current));
        if (!stepsUpTargets) return;
        const record = recordsByIndex.get(index);
        if (record && UsersController.grantsAccess(current, record)) this.sessions.assertRecentSignIn(request.backOffice);
        const weakens = twoFactorWeakening(current);
        if (weakens) weakensTwoFactor.set(index, weakens);
      },
      asStored: (written: BackOfficeUser, index: number): void => {
        if (checksPermissions) refused(index, () => this.groups.assertMayHaveCreated(actor, written));
        if (weakensTwoFactor.get(index)?.(written)) this.sessions.assertRecentSignIn(request.backOffice);
      },
    });
    const results = await this.userManager.importUsers(body.users, { ...options, source: 'api' }, authorize);
    return { results, summary: summarizeImport(results) };
  }

  /**
   * A real import (not a dry run) that would create a user, or (`onConflict: 'update'`) give an existing user another
   * password hash, another email address or another username, needs a recent sign-in ({@link BackOfficeSessionService.assertRecentSignIn}:
   * 401 `reauthentication_required`, always for a bearer token). A new user is a lasting credential with the groups the
   * record names (an admin with a password hash the attacker chose), as `POST /users/invite` and `POST /users/api` mint
   * (OWASP ASVS 5.0 7.5.3); an overwrite is an account takeover with a stolen admin cookie (the hash is the attacker's
   * password; the address receives the forgot-password link; with a password checker keyed by username, e.g. LDAP
   * `uid={username}`, the new username's directory password signs in), as `PUT /users/:id` moving an email is (7.5.1). Checked
   * before anything is written; one such record refuses the whole request. Only valid records count (one reported
   * `invalid`, e.g. an unknown group or a duplicate within the batch, writes nothing): a record creates a user when no
   * user holds its email or its username (the store inserts it, whatever `onConflict`), and updates the store's
   * {@link importUpdateTarget} (a username-only match or an email match whose username is another user's ends
   * `duplicate_*`). Decided on reads made before the write takes its locks, as the permission check is. A record giving
   * an existing user a group it is not in, or enabling a disabled one ({@link grantsAccess}), needs one too: asked here
   * on those reads, and again on the user as stored under the batch's locks (`asStoredTarget` in {@link importUsers}),
   * as `PUT /users/:id/groups` and `POST /users/:id/enable` decide it (a group taken away or a disable committed
   * meanwhile); the first answer does not rest on a host store calling `authorizeTarget`.
   */
  private async assertStepUpForCredentials(
    auth: BackOfficeAuthenticatedRequest['backOffice'],
    onConflict: ImportConflictMode,
    records: readonly ImportRecordToAuthorize[],
    conflictsOf: ImportConflictLookup,
  ): Promise<void> {
    // A recent sign-in satisfies every record: no lookups then (a batch of 1,000 new users would read each one).
    if (this.sessions.hasRecentSignIn(auth)) return;
    for (const record of records) {
      if (!record.valid) continue;
      const { byEmail, byUsername } = await conflictsOf(record);
      const creates = byEmail === null && byUsername === null;
      const target = onConflict === 'update' ? importUpdateTarget(byEmail, byUsername) : null;
      if (creates || (target && (this.overwritesCredentials(target, record) || UsersController.grantsAccess(target, record)))) {
        this.sessions.assertRecentSignIn(auth);
        return;
      }
    }
  }

  /** Whether disabling `current` until `until` would let it back in sooner than its stored disable does. */
  private static endsDisableSooner(current: BackOfficeUser, until: Date): boolean {
    return !current.isApproved && (current.disabledUntil == null || until.getTime() < current.disabledUntil.getTime());
  }

  /**
   * Whether the record would give the user a group it is not in, or enable a disabled user (`isApproved` false to
   * true): a lasting grant of access, as `PUT /users/:id/groups` adding a group and `POST /users/:id/enable` are
   * (OWASP ASVS 5.0 7.5.3).
   */
  private static grantsAccess(existing: BackOfficeUser, record: ImportRecordToAuthorize): boolean {
    return addsAny(record.groups, existing.groups) || (record.isApproved === true && !existing.isApproved);
  }

  /**
   * Whether the record would replace the user's password hash, move its email to another address or give it another
   * username ({@link importRenamesUser}: the identity a password checker keyed by username, LDAP `uid={username}`,
   * signs in as; with `usernameIsEmail: false` the record's own, else its email).
   */
  private overwritesCredentials(existing: BackOfficeUser, record: ImportRecordToAuthorize): boolean {
    const replacesHash = record.passwordHash != null && record.passwordHash !== existing.passwordHash;
    const renames = record.username !== undefined && importRenamesUser(existing, record.username);
    return replacesHash || renames || (record.email !== undefined && this.lifecycle.changesEmailAddress(existing, record.email));
  }

  /**
   * The existing users with a well-formed record's email and with its username, as the store's write looks them up.
   * `byUsername` is read only when it can differ from `byEmail` (null when no user has the email: no update then).
   */
  private async findConflicts(record: ImportRecordToAuthorize): Promise<ImportConflicts> {
    if (record.normalizedEmail === undefined) return { byEmail: null, byUsername: null };
    const store = this.userManager.store;
    const byEmail = await store.findByNormalizedEmail(record.normalizedEmail);
    const username = record.normalizedUsername;
    if (username === undefined) return { byEmail, byUsername: null };
    if (username !== record.normalizedEmail) return { byEmail, byUsername: await store.findByNormalizedUsername(username) };
    // The same key: the user with the email usually holds it as its username too.
    if (byEmail === null || byEmail.normalizedUsername === username) return { byEmail, byUsername: byEmail };
    return { byEmail, byUsername: await store.findByNormalizedUsername(username) };
  }

  /** The existing users a well-formed record conflicts with: by email, and by username when that is another key. */
  private static conflictingUsers(record: ImportRecordToAuthorize, { byEmail, byUsername }: ImportConflicts): BackOfficeUser[] {
    const matches = [byEmail, record.normalizedUsername === record.normalizedEmail ? null : byUsername];
    return matches.filter((user): user is BackOfficeUser => user !== null);
  }

  /**
   * The import of a caller outside `admin`, checked before anything is written (dry runs too): every record's
   * groups (after `groupMap`) must be ones the caller may assign, and with `onConflict` `update` or `skip` every
   * existing user a record matches (by email or username) one the caller may manage. The first record that fails
   * refuses the whole request (403 `forbidden`, `errors[0].field` = `users[<index>]`). The CLI does not check:
   * its operator has the database anyway.
   */
  private async authorizeImport(
    actor: BackOfficeUser,
    onConflict: ImportConflictMode,
    records: readonly ImportRecordToAuthorize[],
    conflictsOf: ImportConflictLookup,
  ): Promise<void> {
    const refusedGroups = new Map<string, BackOfficeHttpError>();
    for (const alias of new Set(records.flatMap((r) => r.groups))) {
      try {
        await this.groups.assertMayAssign(actor, [alias]);
      } catch (error) {
        if (!(error instanceof BackOfficeHttpError)) throw error;
        refusedGroups.set(alias, error);
      }
    }
    for (const record of records) {
      const refusedGroup = record.groups.find((alias) => refusedGroups.has(alias));
      if (refusedGroup !== undefined) throw UsersController.importRefused(record.index, refusedGroups.get(refusedGroup)!);
      if (onConflict === 'fail') continue;
      for (const existing of UsersController.conflictingUsers(record, await conflictsOf(record))) {
        try {
          this.groups.assertMayManage(actor, existing);
        } catch (error) {
          if (!(error instanceof BackOfficeHttpError)) throw error;
          throw UsersController.importRefused(record.index, error);
        }
      }
    }
  }

  private static importRefused(index: number, cause: BackOfficeHttpError): BackOfficeHttpError {
    const reason = (cause.getResponse() as { message: string }).message;
    return new BackOfficeHttpError(403, 'forbidden', `users[${index}]: ${reason} Nothing was imported.`, {
      errors: [{ field: `users[${index}]`, code: 'forbidden', description: reason }],
    });
  }

  @Post(':id/resend-invite')
  @HttpCode(202)
  @ApiAcceptedResponse({ description: 'A new invite link was sent; the previous one no longer works' })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'not_invited (also when the invitee was disabled while the resend ran: no link stored, no email attempted)' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: 'too_many_requests (rateLimits.inviteResendPerUser, default 5 per hour per invited user)' })
  @ApiResponse({ status: 502, type: ErrorResponse, description: 'email_failed: the new email could not be sent; the previous invite link still works' })
  @requirePermissions('users.invite')
  async resendInvite(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<{ user: BackOfficeUserDto }> {
    const user = await this.findManageable(request, id);
    if (!this.invites.isInvited(user)) throw new BackOfficeHttpError(409, 'not_invited', 'This user is not waiting for an invite.');
    // Each resend mails the invitee: limited per invitee, so no inviter (or stolen session) can flood one address.
    await this.rateLimiter.enforce([{ name: 'invite-resend-user', key: user.id, limit: this.options.rateLimits.inviteResendPerUser, windowSeconds: 3600 }]);
    await this.assertMayStillManage(request, user); // the resend voids the invitee's live link
    return this.deliveryResponse(await this.invites.resend(user, request.backOffice.user));
  }

  private deliveryResponse(outcome: BackOfficeInviteOutcome): { user: BackOfficeUserDto } {
    const user = toBackOfficeUserDto(outcome.user, this.clock.now());
    if ('failed' in outcome.delivery) {
      throw new BackOfficeHttpError(502, 'email_failed', 'The user was invited but the email could not be sent; resend the invite.', {
        user,
        messageId: outcome.delivery.messageId ?? null,
      });
    }
    return { user };
  }

  @Post(':id/disable')
  @HttpCode(200)
  @ApiOkResponse({ type: UserResponse, description: 'Disabled; the user\'s sessions end' })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: an until that ends a disable sooner (the user is disabled with no end, or a later one) and no POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token): the next sign-in after until enables the user again, as POST /users/:id/enable does; nothing is written',
  })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'last_admin' })
  @requirePermissions('users.manage')
  async disable(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string, @Body() body: DisableUserDto): Promise<BackOfficeUserDto> {
    const until = body.until === undefined ? null : new Date(body.until);
    // The strict ISO 8601 rule also passes forms Date cannot read (2099-W50, 20991201T000000Z): no date to store.
    if (until && Number.isNaN(until.getTime())) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: [{ field: 'until', code: 'isDateString', description: 'until must be a date-time such as 2030-01-31T17:00:00Z' }],
      });
    }
    if (until && until.getTime() <= this.clock.now().getTime()) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'until must be in the future.', { errors: [{ field: 'until', code: 'in_the_past', description: 'until must be in the future' }] });
    }
    const user = await this.findManageable(request, id);
    const mayManage = this.mayManageAsStored(request);
    // A timed disable of a user already disabled for longer (or for good) ends that disable sooner: the next sign-in
    // after `until` enables it again, an enable by another name, which needs a recent sign-in (OWASP ASVS 5.0 7.5.3).
    // Asked on the user as read, and again as stored under the write's lock (a disable committed meanwhile counts; a
    // store without group locks runs no `authorize`).
    const stepUpIfSooner = (current: BackOfficeUser): void => {
      if (until && UsersController.endsDisableSooner(current, until)) this.sessions.assertRecentSignIn(request.backOffice);
    };
    stepUpIfSooner(user);
    const authorize = (current: BackOfficeUser): void => {
      mayManage?.(current);
      stepUpIfSooner(current);
    };
    this.throwIfFailed(await this.userManager.setApproved(user, false, { reason: body.reason?.trim() || null, until }, { authorize }));
    await this.signInManager.refreshSignIn(user); // setApproved revoked an API user's bearer tokens
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Post(':id/enable')
  @HttpCode(200)
  @ApiOkResponse({ type: UserResponse })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: the session has no sign-in or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token); nothing is written. Checked after the 403 and 404 checks. Disabling needs no step-up',
  })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @requirePermissions('users.manage')
  async enable(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<BackOfficeUserDto> {
    const user = await this.findManageable(request, id);
    // An enable brings back a lasting credential (a password, passkeys, an API user's secret, which a disable leaves in
    // place), as an invite or an API user mints one: a stolen cookie or an admin API user's bearer token must not be
    // enough to revive a disabled account the attacker controls (OWASP ASVS 5.0 7.5.3). Asked whatever the user's state
    // as read here, so a disable committed between this read and the write is not undone without one. Disabling needs none.
    this.sessions.assertRecentSignIn(request.backOffice);
    this.throwIfFailed(await this.userManager.setApproved(user, true, {}, { authorize: this.mayManageAsStored(request) }));
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Post(':id/unlock')
  @HttpCode(200)
  @ApiOkResponse({ type: UserResponse })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: the session has no sign-in or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token); nothing is written. Checked after the 403, 404 and 409 checks',
  })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'cannot_unlock_self: your own lock is ended by another admin or runs out' })
  @requirePermissions('users.manage')
  async unlock(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<BackOfficeUserDto> {
    const user = await this.findManageable(request, id);
    // A stolen admin session locked by its own wrong step-ups must not lift the lock and guess on (OWASP ASVS 4.0
    // 2.2.1): the lock live sessions outlast would bound nothing. Another admin unlocks, or the lock runs out.
    if (user.id === request.backOffice.user.id) throw BackOfficeHttpError.of('cannot_unlock_self', 'You cannot unlock your own account.');
    // Unlocking another user ends the lock that bounds guesses at their password: a stale admin cookie or an admin API
    // user's bearer token guessing at POST /auth/login would unlock after every fifth wrong guess and guess on. It needs
    // a recent sign-in, as an enable does (OWASP ASVS 5.0 7.5.3 / 4.0 3.7.1), asked after the 403, 404 and 409 checks.
    this.sessions.assertRecentSignIn(request.backOffice);
    this.throwIfFailed(await this.userManager.setLockoutEnd(user, null, { authorize: this.mayManageAsStored(request) }));
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Put(':id/groups')
  @HttpCode(200)
  @ApiOkResponse({ type: UserResponse })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed (unknown group)' })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: the request adds a group and the session has no sign-in or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token); nothing is written. Taking groups away needs no step-up',
  })
  @ApiResponse({
    status: 403,
    type: ErrorResponse,
    description: 'forbidden: adds or removes a group holding permissions the caller lacks (or admin), or the user is one the caller may not manage',
  })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'last_admin, or groups_managed_by_provider (an external provider owns this user\'s groups)' })
  @requirePermissions('users.manage')
  async setGroups(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string, @Body() body: SetGroupsDto): Promise<BackOfficeUserDto> {
    const actor = request.backOffice.user;
    const user = await this.findManageable(request, id);
    const changed = [...body.groups.filter((g) => !user.groups.includes(g)), ...user.groups.filter((g) => !body.groups.includes(g))];
    await this.groups.assertMayAssign(actor, changed, user);
    // Again on the user as stored when the groups are written: a group given to them meanwhile (admin, or permissions the
    // caller lacks) is not the caller's to take away. And on the user as written, in the same transaction: a group the
    // caller adds that a concurrent PUT /groups/:alias gave a permission the caller lacks is not the caller's to give.
    // A group given is a lasting grant of access (admin, a permission, a group a route or the host's code checks by
    // name): a stolen cookie or an admin API user's bearer token must not be enough (OWASP ASVS 5.0 7.5.3), decided
    // under the same lock on the user as stored (stepUp), as the group routes decide theirs. Taking groups away needs none.
    this.throwIfFailed(
      await this.userManager.setGroups(user, body.groups, { authorize: this.mayManageAsStored(request), stepUp: () => this.sessions.assertRecentSignIn(request.backOffice) }),
    );
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Post(':id/2fa/reset')
  @HttpCode(200)
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: UserResponse, description: 'The user\'s 2FA is off, enrolments and recovery codes removed, sessions ended' })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @requirePermissions('users.manage')
  async resetTwoFactor(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<BackOfficeUserDto> {
    const user = await this.findManageable(request, id);
    this.throwIfFailed(await this.userManager.resetTwoFactor(user, { authorize: this.mayManageAsStored(request) }));
    await this.signInManager.refreshSignIn(user);
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Put(':id')
  @HttpCode(200)
  @ApiOkResponse({ type: UserResponse, description: 'Name and/or email changed (the username follows the email when usernameIsEmail); audited with a diff' })
  @ApiResponse({ status: 400, type: ErrorResponse, description: 'validation_failed' })
  @ApiResponse({
    status: 401,
    type: ErrorResponse,
    description:
      'unauthenticated, or reauthentication_required: the email moves to another address and the session has no sign-in or POST /auth/reauthenticate within session.reauthenticationMinutes (always for a bearer token); name-only edits need no step-up',
  })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({
    status: 409,
    type: ErrorResponse,
    description:
      'duplicate_email; directory_managed: usernameIsEmail and the directory (LDAP) manages the user, whose username (the key it signs in with) would move with the email (also after a step-up); nothing is written',
  })
  @requirePermissions('users.manage')
  async update(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string, @Body() body: AdminUpdateUserDto): Promise<BackOfficeUserDto> {
    const user = await this.findManageable(request, id);
    // A new address plus forgot-password would take the account over: a stolen admin cookie must not be enough.
    if (body.email !== undefined && this.lifecycle.changesEmailAddress(user, body.email)) this.sessions.assertRecentSignIn(request.backOffice);
    // Checked again under the admin lock when written: an email move would send the target's reset links elsewhere.
    await this.lifecycle.updateProfile(user, body, { authorize: this.mayManageAsStored(request) });
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Delete(':id')
  @HttpCode(204)
  @RequiresRecentSignIn()
  @ApiNoContentResponse({ description: 'Deleted; sessions, tokens and memberships went with it; the audit trail keeps the id' })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @ApiResponse({ status: 409, type: ErrorResponse, description: 'cannot_delete_self or last_admin' })
  @requirePermissions('users.manage')
  async remove(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<void> {
    const user = await this.findManageable(request, id);
    await this.lifecycle.delete(user, request.backOffice.user, { authorize: this.mayManageAsStored(request) });
  }

  @Post(':id/force-password-reset')
  @HttpCode(200)
  @RequiresRecentSignIn()
  @ApiOkResponse({ type: UserResponse, description: 'The password no longer works, every session ended, a reset link was emailed' })
  @ApiResponse({
    status: 403,
    type: ErrorResponse,
    description: 'forbidden: the user is in admin, or holds a permission the caller lacks; local_login_disabled: denyLocalLogin is on (the reset link could not be used)',
  })
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found (also when allowPasswordReset is false)' })
  @ApiResponse({
    status: 409,
    type: ErrorResponse,
    description: "not_applicable: API users and invited users have no password; directory_managed: the organisation's directory (LDAP) manages the user's password",
  })
  @ApiResponse({ status: 502, type: ErrorResponse, description: 'email_failed (the reset happened; try again)' })
  @requirePermissions('users.manage')
  async forcePasswordReset(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<BackOfficeUserDto> {
    const user = await this.findManageable(request, id);
    if (user.kind === 'api' || this.invites.isInvited(user)) {
      throw new BackOfficeHttpError(409, 'not_applicable', 'This user has no password to reset (API user or pending invite).');
    }
    await this.lifecycle.forcePasswordReset(user, { authorize: this.mayManageAsStored(request) });
    return toBackOfficeUserDto(user, this.clock.now());
  }

  @Delete(':id/sessions')
  @HttpCode(204)
  @ApiNoContentResponse({ description: "Every session of the user ended (an API user's bearer tokens)" })
  @mayManageTargetErrors()
  @ApiResponse({ status: 404, type: ErrorResponse, description: 'not_found' })
  @requirePermissions('sessions.manage')
  async revokeSessions(@Req() request: BackOfficeAuthenticatedRequest, @Param('id') id: string): Promise<void> {
    const user = await this.findManageable(request, id);
    await this.assertMayStillManage(request, user);
    // An API user's "sessions" are its bearer tokens: signing it out everywhere ends them (its secret still works).
    const count = user.kind === 'api' ? await this.apiUsers.revokeTokens(user.id) : await this.sessions.revokeAll(user);
    // The email-change link an ended session asked for (a stolen cookie's, to the thief's mailbox) ends with it; audited either way.
    await this.userManager.sessionsEnded(user, count);
  }

  /** The user (404 when none) once the caller may act on them (403 `forbidden`: see `assertMayManage`). */
  private async findManageable(request: BackOfficeAuthenticatedRequest, id: string): Promise<BackOfficeUser> {
    const user = await this.findOr404(id);
    this.groups.assertMayManage(request.backOffice.user, user);
    return user;
  }

  /**
   * The target check again, on the user as stored when a write under the admin group's lock (groups, disable, enable,
   * delete, an edit, a forced password reset, a 2FA reset, an unlock) runs: a user made an admin (or given a permission the caller lacks) after {@link findManageable} read them
   * is no longer the caller's to change (OWASP ASVS 4.0 4.1.3, 5.0 15.4.2).
   */
  private mayManageAsStored(request: BackOfficeAuthenticatedRequest): BackOfficeWriteAuthorizer | undefined {
    return mayManageAsStored(this.groups, request.backOffice.user);
  }

  /**
   * {@link mayManageAsStored} for a write outside the user store (sessions, an invite's email), which cannot run under
   * the admin group's lock: the check is made there on the user as stored just before that write (403, or 404 when the
   * user is gone). A promotion committed after it and before the write is not seen; the write ends sessions or mails
   * the invitee's own address, and moves no credential.
   */
  private async assertMayStillManage(request: BackOfficeAuthenticatedRequest, user: BackOfficeUser): Promise<void> {
    const authorize = this.mayManageAsStored(request);
    if (authorize) this.throwIfFailed(await this.userManager.authorizeAsStored(user, authorize));
  }

  private async findOr404(id: string): Promise<BackOfficeUser> {
    const user = await this.userManager.findById(id);
    if (!user) throw BackOfficeHttpError.notFound('No such user.');
    return user;
  }

  private throwIfFailed(result: IdentityResult): void {
    if (result.succeeded) return;
    const error = result.errors[0];
    if (error.code === 'last_admin' || error.code === 'groups_managed_by_provider') throw new BackOfficeHttpError(409, error.code, error.description);
    // Deleted by a concurrent request after it was looked up.
    if (error.code === 'not_found') throw BackOfficeHttpError.notFound('No such user.');
    throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', { errors: [...result.errors] });
  }
}
