import { countedPage, type BackOfficeListPage } from '../common/list-page.js';
import { Inject, Injectable } from '@nestjs/common';
import type { BackOfficeClock } from '../common/clock.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { toStorableText } from '../common/storable-text.js';
import { BACKOFFICE_CLOCK, BACKOFFICE_GROUP_STORE } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import {
  type BackOfficeGroupChange,
  type BackOfficeGroupNotification,
  type BackOfficeNotificationInit,
  GroupCreatedNotification,
  GroupDeletedNotification,
  GroupUpdatedNotification,
} from '../notifications/notifications.js';
import { NotificationPublisher } from '../notifications/notification-publisher.service.js';
import { BackOfficeAccessDenials } from '../permissions/backoffice-access-denials.service.js';
import { ADMIN_GROUP_ALIAS, BackOfficePermissionRegistry } from '../permissions/backoffice-permissions.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { BackOfficeDuplicateGroupError, type BackOfficeGroupRecord, type BackOfficeGroupStore } from './group-store.interface.js';
import { addsAny } from '../common/grants.js';

/** A group as the API shows it. */
export interface BackOfficeGroupView {
  alias: string;
  name: string;
  /** Effective permissions: every permission for `admin`. */
  permissions: string[];
  requireTwoFactor: boolean;
  memberCount: number;
  builtIn: boolean;
  createdAt: string;
  updatedAt: string;
}

type Change = BackOfficeGroupChange['changes'];

/** Who changes groups (the signed-in user of the HTTP routes): their groups and permissions. */
export type GroupActor = Pick<BackOfficeUser, 'groups' | 'permissions'>;

/**
 * Group CRUD with permissions. Every change runs with the group locked by the group store, so two admins
 * editing one group are serialised and each audit entry's diff starts from what the other one wrote.
 */
@Injectable()
export class BackOfficeGroupService {
  constructor(
    @Inject(BACKOFFICE_GROUP_STORE) private readonly store: BackOfficeGroupStore,
    @Inject(BackOfficePermissionRegistry) private readonly registry: BackOfficePermissionRegistry,
    @Inject(NotificationPublisher) private readonly notifications: NotificationPublisher,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
    @Inject(BackOfficeAccessDenials) private readonly denials: BackOfficeAccessDenials,
  ) {}

  async list(): Promise<BackOfficeGroupView[]> {
    return (await this.store.list()).map((group) => this.view(group));
  }

  /**
   * One page of {@link list} (by alias) with how many groups there are (`totalExact: false` when the store estimated
   * it). With a store's `listPage` one page is read; otherwise `list`, cut here.
   */
  async listPage(page: BackOfficeListPage): Promise<{ items: BackOfficeGroupView[]; total: number; totalExact: boolean }> {
    const read = this.store.listPage ? await this.store.listPage(page) : countedPage(await this.store.list(), page);
    return { items: read.items.map((group) => this.view(group)), total: read.total, totalExact: read.totalExact ?? true };
  }

  async get(alias: string): Promise<BackOfficeGroupView> {
    const group = await this.store.find(alias);
    if (!group) throw BackOfficeGroupService.notFound();
    return this.view(group);
  }

  /**
   * Creates a group. With `actor` (the HTTP routes pass the signed-in user) someone outside `admin` may give it only
   * permissions they hold themselves (403 `forbidden` otherwise): `groups.manage` is no way to more permissions.
   */
  async create(
    input: { alias: string; name: string; permissions: string[]; requireTwoFactor?: boolean },
    actor?: GroupActor,
    stepUp?: () => void,
  ): Promise<BackOfficeGroupView> {
    const permissions = this.checkPermissions(input.permissions);
    const name = BackOfficeGroupService.checkName(input.name);
    if (actor) this.assertMayGrant(actor, permissions);
    // A new group's permissions reach every user a provider's groupMapping, LDAP defaultGroups or the host's code gives
    // it by alias, at their next sign-in (none of which the module can list): a lasting grant of access (OWASP ASVS 5.0 7.5.3).
    if (permissions.length > 0) stepUp?.();
    let row: BackOfficeGroupRecord;
    try {
      // Aliases are unique case-insensitively: `Admin` beside `admin` would only confuse.
      row = await this.store.create(input.alias, { name, permissions, requireTwoFactor: input.requireTwoFactor ?? false }, this.clock.now());
    } catch (error) {
      if (error instanceof BackOfficeDuplicateGroupError) {
        throw new BackOfficeHttpError(409, 'duplicate_group', `A group with the alias "${error.existingAlias}" already exists.`);
      }
      throw error;
    }
    const view = this.view(row);
    await this.publish(GroupCreatedNotification, view.alias, {
      name: { from: null, to: view.name },
      permissions: { from: null, to: view.permissions },
      requireTwoFactor: { from: null, to: view.requireTwoFactor },
    });
    return view;
  }

  /**
   * Renames a group, replaces its permissions or its 2FA rule. With `actor`, someone outside `admin` may change only a
   * group whose permissions they all hold, and grant only permissions they hold (403 `forbidden`, nothing written).
   * `stepUp`, when given, is called (under the store's lock, after the 403/409 checks) when `permissions` holds one the
   * group does not, or `requireTwoFactor` turns off for a group with members, and may throw to refuse: the first is a
   * lasting grant of access to every member, the second lets members without 2FA sign in with a password alone (the
   * route's step-up, OWASP ASVS 5.0 7.5.3, 4.0 2.2.x).
   */
  async update(
    alias: string,
    input: { name?: string; permissions?: string[]; requireTwoFactor?: boolean },
    actor?: GroupActor,
    stepUp?: () => void,
  ): Promise<BackOfficeGroupView> {
    const permissions = input.permissions === undefined ? undefined : this.checkPermissions(input.permissions);
    const name = input.name === undefined ? undefined : BackOfficeGroupService.checkName(input.name);
    let changes: Change = {};
    const result = await this.store.update(
      alias,
      (before) => {
        const oldPermissions = this.registry.groupPermissions(before.alias, before.permissions);
        // The caller first: an attempt on a group beyond them (admin included) is a refusal (403, audited), not a 409.
        if (actor) {
          this.assertMayChangeGroup(actor, before.alias, oldPermissions);
          if (permissions !== undefined) this.assertMayGrant(actor, permissions);
        }
        if (permissions !== undefined && before.alias === ADMIN_GROUP_ALIAS && !this.sameSet(permissions, this.registry.allKeys())) {
          throw new BackOfficeHttpError(
            409,
            'admin_group_permissions',
            'The built-in admin group always holds every permission (groups.manage included); its permissions cannot change.',
          );
        }
        const weakensTwoFactor = input.requireTwoFactor === false && before.requireTwoFactor && before.memberCount > 0;
        if ((permissions !== undefined && addsAny(permissions, oldPermissions)) || weakensTwoFactor) stepUp?.();
        changes = {};
        if (name !== undefined && name !== before.name) changes.name = { from: before.name, to: name };
        if (permissions !== undefined && !this.sameSet(permissions, oldPermissions)) changes.permissions = { from: oldPermissions, to: permissions };
        const requireTwoFactor = input.requireTwoFactor ?? before.requireTwoFactor;
        if (requireTwoFactor !== before.requireTwoFactor) changes.requireTwoFactor = { from: before.requireTwoFactor, to: requireTwoFactor };
        if (Object.keys(changes).length === 0) return null;
        return { name: name ?? before.name, permissions: permissions ?? before.permissions, requireTwoFactor };
      },
      this.clock.now(),
    );
    if (!result) throw BackOfficeGroupService.notFound();
    const row = result.after;
    if (Object.keys(changes).length > 0) await this.publish(GroupUpdatedNotification, row.alias, changes);
    return this.view(row);
  }

  /**
   * Deletes a group. `admin` cannot go; a group with members needs `moveMembersTo`, and its members are added
   * to that group in the same transaction.
   * `beforeMovingMembers`, when given, is called (under the store's locks, after the 403/400/409 checks) when the group
   * has members to move into `moveMembersTo`, and may throw to refuse: moving them gives each a group, a lasting grant
   * of access (the route's step-up, OWASP ASVS 5.0 7.5.3).
   */
  async delete(alias: string, moveMembersTo?: string, actor?: GroupActor, beforeMovingMembers?: () => void): Promise<void> {
    const result = await this.store.delete(alias, moveMembersTo, (group, target) => {
      if (actor) {
        // Outside admin: only a group within the actor's permissions goes, and its members move only into such a group.
        // Checked first, so an attempt on admin is a refusal (403, audited) rather than a 409.
        this.assertMayChangeGroup(actor, group.alias, this.registry.groupPermissions(group.alias, group.permissions));
        if (target) this.assertMayChangeGroup(actor, target.alias, this.registry.groupPermissions(target.alias, target.permissions));
      }
      if (group.alias === ADMIN_GROUP_ALIAS) throw new BackOfficeHttpError(409, 'builtin_group', 'The built-in admin group cannot be deleted.');
      if (moveMembersTo !== undefined) {
        if (moveMembersTo === group.alias) throw new BackOfficeHttpError(400, 'validation_failed', 'moveMembersTo must be another group.');
        if (!target) throw new BackOfficeHttpError(400, 'validation_failed', `moveMembersTo: unknown group "${moveMembersTo}".`);
      }
      if (group.memberCount > 0 && !target) {
        throw new BackOfficeHttpError(409, 'group_has_members', `The group has ${group.memberCount} member(s); move them with ?moveMembersTo=<alias>.`, {
          memberCount: group.memberCount,
        });
      }
      if (group.memberCount > 0 && target) beforeMovingMembers?.();
    });
    if (!result) throw BackOfficeGroupService.notFound();
    const { group } = result;
    await this.publish(
      GroupDeletedNotification,
      group.alias,
      { name: { from: group.name, to: null }, permissions: { from: group.permissions, to: null } },
      { movedMembersTo: group.memberCount > 0 ? result.target!.alias : null, movedMembers: group.memberCount },
    );
  }

  /**
   * Refuses (403 `forbidden`) a change of membership that would let the actor grant more than they hold: only
   * members of `admin` add or remove `admin`, and anyone else may only add or remove groups whose permissions
   * they hold themselves and, for a group that a route checks by name, of which they are a member (membership of it
   * is the privilege: OWASP ASVS 4.0 4.1.3). Unknown aliases are left to the caller's validation. `target` is the user whose groups
   * change, when there is one yet (the refusal's affected user in the audit).
   */
  async assertMayAssign(actor: GroupActor, aliases: readonly string[], target?: { id: string }): Promise<void> {
    if (this.mayActOnAnyone(actor) || aliases.length === 0) return;
    const affectedUserId = target?.id ?? null;
    if (aliases.includes(ADMIN_GROUP_ALIAS)) throw this.denials.refuse(BackOfficeGroupService.mayNotAssign(ADMIN_GROUP_ALIAS), affectedUserId);
    const memberOnly = this.memberOnlyBeyond(actor, aliases);
    if (memberOnly !== undefined) throw this.denials.refuse(BackOfficeGroupService.mayNotAssignMemberOnly(memberOnly), affectedUserId);
    const groups = await this.store.findMany(aliases);
    const beyond = groups.find((group) => this.notHeldBy(actor, this.registry.groupPermissions(group.alias, group.permissions)).length > 0);
    if (beyond) throw this.denials.refuse(BackOfficeGroupService.mayNotAssign(beyond.alias), affectedUserId);
  }

  /**
   * {@link assertMayAssign} again, for a new user (`created`) as stored when its groups were written: refuses (403
   * `forbidden`) a member of `admin` (or of a group checked by name that the actor is not in), or a user whose groups
   * now hold a permission the actor lacks (a group edited after the first check read it), unless the actor is in
   * `admin`. Synchronous: it runs in the insert's transaction.
   */
  assertMayHaveCreated(actor: GroupActor, created: GroupActor): void {
    this.assertWithinActor(actor, created, null, (beyond) =>
      typeof beyond === 'string'
        ? beyond === ADMIN_GROUP_ALIAS
          ? BackOfficeGroupService.mayNotAssign(ADMIN_GROUP_ALIAS)
          : BackOfficeGroupService.mayNotAssignMemberOnly(beyond)
        : new BackOfficeHttpError(403, 'forbidden', `You may not give a user groups holding permissions you do not have (${beyond.join(', ')}).`),
    );
  }

  /**
   * Refuses (403 `forbidden`) an action of `actor` on another user (`target`) that would let the actor reach
   * beyond what they hold (OWASP ASVS 4.0 4.1.3 least privilege, 4.2.1 IDOR): members of `admin` may act on
   * anyone; anyone else only on a target outside `admin`, and outside every group checked by name that they are not in
   * themselves, whose every effective permission they hold themselves.
   * Call it before anything is written; the last-admin rules still apply on top of it.
   */
  assertMayManage(actor: GroupActor, target: GroupActor & { id?: string }): void {
    this.assertWithinActor(actor, target, target.id ?? null, (beyond) =>
      typeof beyond === 'string'
        ? new BackOfficeHttpError(403, 'forbidden', `You may not act on this user: they are in "${beyond}", and only its members may.`)
        : new BackOfficeHttpError(403, 'forbidden', `You may not act on this user: they hold permissions you do not have (${beyond.join(', ')}).`),
    );
  }

  /**
   * The rule {@link assertMayManage} and {@link assertMayHaveCreated} share: unless `actor` is in `admin`, `user` must be
   * outside `admin` and every group checked by name that `actor` is not in, and hold no effective permission `actor`
   * lacks. A refusal is `refusal(the alias of such a group)` or `refusal(the keys beyond)`, audited with `affectedUserId`.
   */
  private assertWithinActor(
    actor: GroupActor,
    user: GroupActor,
    affectedUserId: string | null,
    refusal: (beyond: string | string[]) => BackOfficeHttpError,
  ): void {
    if (this.mayActOnAnyone(actor)) return;
    if (user.groups.includes(ADMIN_GROUP_ALIAS)) throw this.denials.refuse(refusal(ADMIN_GROUP_ALIAS), affectedUserId);
    const memberOnly = this.memberOnlyBeyond(actor, user.groups);
    if (memberOnly !== undefined) throw this.denials.refuse(refusal(memberOnly), affectedUserId);
    const beyond = this.notHeldBy(actor, this.registry.effective(user));
    if (beyond.length > 0) throw this.denials.refuse(refusal(beyond), affectedUserId);
  }

  /** Refuses (403) granting a permission the actor does not hold, unless the actor is in `admin`. */
  private assertMayGrant(actor: GroupActor, permissions: readonly string[]): void {
    if (this.mayActOnAnyone(actor)) return;
    const beyond = this.notHeldBy(actor, permissions);
    if (beyond.length > 0) {
      throw this.denials.refuse(new BackOfficeHttpError(403, 'forbidden', `You may not grant permissions you do not hold (${beyond.join(', ')}).`));
    }
  }

  /**
   * Refuses (403) a change to a group holding a permission the actor does not hold, or to a group checked by name that
   * the actor is not in (moving members into it gives them its routes), unless the actor is in `admin`.
   */
  private assertMayChangeGroup(actor: GroupActor, alias: string, permissions: readonly string[]): void {
    if (this.mayActOnAnyone(actor)) return;
    if (alias === ADMIN_GROUP_ALIAS || this.notHeldBy(actor, permissions).length > 0) {
      throw this.denials.refuse(new BackOfficeHttpError(403, 'forbidden', `You may not change "${alias}": it holds permissions you do not have.`));
    }
    if (this.memberOnlyBeyond(actor, [alias]) !== undefined) {
      throw this.denials.refuse(new BackOfficeHttpError(403, 'forbidden', `You may not change "${alias}": routes check membership of it by name, and only its members may.`));
    }
  }

  /** The first of `aliases` that a route checks by name (`@BackOfficeAuthorize({ groups })`) and `actor` is not in. */
  private memberOnlyBeyond(actor: GroupActor, aliases: readonly string[]): string | undefined {
    return aliases.find((alias) => this.registry.isCheckedByName(alias) && !actor.groups.includes(alias));
  }

  /** The permission keys of `keys` that `actor` does not hold. */
  private notHeldBy(actor: GroupActor, keys: Iterable<string>): string[] {
    const held = this.registry.effective(actor);
    return [...keys].filter((key) => !held.has(key));
  }

  /** True for members of `admin`: {@link assertMayAssign} and {@link assertMayManage} never refuse them. */
  mayActOnAnyone(actor: Pick<BackOfficeUser, 'groups'>): boolean {
    return actor.groups.includes(ADMIN_GROUP_ALIAS);
  }

  private static mayNotAssign(alias: string): BackOfficeHttpError {
    return new BackOfficeHttpError(403, 'forbidden', `You may not add users to or remove them from "${alias}": it holds permissions you do not have.`);
  }

  private static mayNotAssignMemberOnly(alias: string): BackOfficeHttpError {
    return new BackOfficeHttpError(403, 'forbidden', `You may not add users to or remove them from "${alias}": routes check membership of it by name, and only its members may.`);
  }

  private static notFound(): BackOfficeHttpError {
    return BackOfficeHttpError.notFound('No such group.');
  }

  private view(group: BackOfficeGroupRecord): BackOfficeGroupView {
    return {
      alias: group.alias,
      name: group.name,
      permissions: this.registry.groupPermissions(group.alias, group.permissions),
      requireTwoFactor: group.requireTwoFactor,
      memberCount: group.memberCount,
      builtIn: group.alias === ADMIN_GROUP_ALIAS,
      createdAt: group.createdAt.toISOString(),
      updatedAt: group.updatedAt.toISOString(),
    };
  }

  /** Unknown keys are a 400 naming each; the result is de-duplicated in registry order. */
  private checkPermissions(keys: string[]): string[] {
    const unknown = this.registry.unknown(keys);
    if (unknown.length > 0) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: unknown.slice(0, 20).map((key) => ({
          field: 'permissions',
          code: 'unknown_permission',
          description: `Unknown permission "${key.slice(0, 64)}".`,
        })),
      });
    }
    return this.registry.allKeys().filter((k) => keys.includes(k));
  }

  /** The trimmed name, NUL and lone surrogates as U+FFFD (no text column holds them); blank: 400. */
  private static checkName(name: string): string {
    const trimmed = toStorableText(name.trim());
    if (trimmed.length === 0) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: [{ field: 'name', code: 'isNotEmpty', description: 'name must not be blank' }],
      });
    }
    return trimmed;
  }

  private sameSet(a: readonly string[], b: readonly string[]): boolean {
    const left = new Set(a);
    return left.size === new Set(b).size && b.every((k) => left.has(k));
  }

  private async publish(
    type: new (init: BackOfficeNotificationInit & BackOfficeGroupChange) => BackOfficeGroupNotification,
    alias: string,
    changes: Change,
    extra: Partial<BackOfficeGroupChange> = {},
  ): Promise<void> {
    const context = BackOfficeRequestContextStore.current();
    await this.notifications.publish(
      new type({
        ipAddress: context.ipAddress ?? null,
        performingUserId: context.performingUserId ?? null,
        dateTimeUtc: this.clock.now(),
        alias,
        changes,
        ...extra,
      }),
    );
  }
}
