import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { BackOfficeClock } from '../common/clock.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BACKOFFICE_CLOCK } from '../constants.js';
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
import { ADMIN_GROUP_ALIAS, BackOfficePermissionRegistry } from '../permissions/backoffice-permissions.js';
import type { BackOfficeUser } from '../users/backoffice-user.js';
import { aliases } from '../persistence/typeorm/typeorm-user-store.js';

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

interface GroupRow {
  id: string;
  alias: string;
  name: string;
  permissions: string[] | string;
  require_two_factor: boolean;
  created_at: Date;
  updated_at: Date;
  member_count: number | string;
}

const SELECT_GROUP = `SELECT g.id, g.alias, g.name, g.permissions, g.require_two_factor, g.created_at, g.updated_at,
  (SELECT count(*) FROM backoffice_user_group ug WHERE ug.group_id = g.id) AS member_count FROM backoffice_group g`;

const textArray = aliases;

type Change = BackOfficeGroupChange['changes'];

/**
 * Group CRUD with permissions. Every change runs in one transaction that locks the group row, so two admins
 * editing one group are serialised and each audit entry's diff starts from what the other one wrote.
 */
@Injectable()
export class BackOfficeGroupService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(BackOfficePermissionRegistry) private readonly registry: BackOfficePermissionRegistry,
    @Inject(NotificationPublisher) private readonly notifications: NotificationPublisher,
    @Inject(BACKOFFICE_CLOCK) private readonly clock: BackOfficeClock,
  ) {}

  async list(): Promise<BackOfficeGroupView[]> {
    const rows: GroupRow[] = await this.dataSource.query(`${SELECT_GROUP} ORDER BY g.alias`);
    return rows.map((row) => this.view(row));
  }

  async get(alias: string): Promise<BackOfficeGroupView> {
    return this.view(await this.findOr404(this.dataSource.manager, alias, false));
  }

  async create(input: { alias: string; name: string; permissions: string[]; requireTwoFactor?: boolean }): Promise<BackOfficeGroupView> {
    const permissions = this.checkPermissions(input.permissions);
    const name = BackOfficeGroupService.checkName(input.name);
    const row = await this.dataSource.transaction(async (manager) => {
      // Aliases are unique case-insensitively: `Admin` beside `admin` would only confuse.
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('backoffice_group:create'))`);
      const [clash] = await manager.query(`SELECT alias FROM backoffice_group WHERE lower(alias) = lower($1)`, [input.alias]);
      if (clash) throw new BackOfficeHttpError(409, 'duplicate_group', `A group with the alias "${clash.alias}" already exists.`);
      const now = this.clock.now();
      await manager.query(
        `INSERT INTO backoffice_group (alias, name, permissions, require_two_factor, created_at, updated_at) VALUES ($1, $2, $3::text[], $4, $5, $5)`,
        [input.alias, name, permissions, input.requireTwoFactor ?? false, now],
      );
      return this.findOr404(manager, input.alias, false);
    });
    const view = this.view(row);
    await this.publish(GroupCreatedNotification, view.alias, {
      name: { from: null, to: view.name },
      permissions: { from: null, to: view.permissions },
      requireTwoFactor: { from: null, to: view.requireTwoFactor },
    });
    return view;
  }

  async update(alias: string, input: { name?: string; permissions?: string[]; requireTwoFactor?: boolean }): Promise<BackOfficeGroupView> {
    const permissions = input.permissions === undefined ? undefined : this.checkPermissions(input.permissions);
    const name = input.name === undefined ? undefined : BackOfficeGroupService.checkName(input.name);
    const { row, changes } = await this.dataSource.transaction(async (manager) => {
      const before = await this.findOr404(manager, alias, true);
      if (permissions !== undefined && before.alias === ADMIN_GROUP_ALIAS && !this.sameSet(permissions, this.registry.allKeys())) {
        throw new BackOfficeHttpError(
          409,
          'admin_group_permissions',
          'The built-in admin group always holds every permission (groups.manage included); its permissions cannot change.',
        );
      }
      const changes: Change = {};
      const oldPermissions = this.registry.groupPermissions(before.alias, textArray(before.permissions));
      if (name !== undefined && name !== before.name) changes.name = { from: before.name, to: name };
      if (permissions !== undefined && !this.sameSet(permissions, oldPermissions)) changes.permissions = { from: oldPermissions, to: permissions };
      const requireTwoFactor = input.requireTwoFactor ?? before.require_two_factor;
      if (requireTwoFactor !== before.require_two_factor) changes.requireTwoFactor = { from: before.require_two_factor, to: requireTwoFactor };
      if (Object.keys(changes).length === 0) return { row: before, changes };
      await manager.query(
        `UPDATE backoffice_group SET name = $2, permissions = $3::text[], require_two_factor = $5, updated_at = $4 WHERE id = $1`,
        [before.id, name ?? before.name, permissions ?? textArray(before.permissions), this.clock.now(), requireTwoFactor],
      );
      return { row: await this.findOr404(manager, alias, false), changes };
    });
    if (Object.keys(changes).length > 0) await this.publish(GroupUpdatedNotification, row.alias, changes);
    return this.view(row);
  }

  /**
   * Deletes a group. `admin` cannot go; a group with members needs `moveMembersTo`, and its members are added
   * to that group in the same transaction.
   */
  async delete(alias: string, moveMembersTo?: string): Promise<void> {
    const result = await this.dataSource.transaction(async (manager) => {
      const group = await this.findOr404(manager, alias, true);
      if (group.alias === ADMIN_GROUP_ALIAS) throw new BackOfficeHttpError(409, 'builtin_group', 'The built-in admin group cannot be deleted.');
      const members = Number(group.member_count);
      let target: GroupRow | undefined;
      if (moveMembersTo !== undefined) {
        if (moveMembersTo === group.alias) throw new BackOfficeHttpError(400, 'validation_failed', 'moveMembersTo must be another group.');
        [target] = await manager.query(`${SELECT_GROUP} WHERE g.alias = $1 FOR UPDATE OF g`, [moveMembersTo]);
        if (!target) throw new BackOfficeHttpError(400, 'validation_failed', `moveMembersTo: unknown group "${moveMembersTo}".`);
      }
      if (members > 0 && !target) {
        throw new BackOfficeHttpError(409, 'group_has_members', `The group has ${members} member(s); move them with ?moveMembersTo=<alias>.`, {
          memberCount: members,
        });
      }
      if (target && members > 0) {
        await manager.query(
          `INSERT INTO backoffice_user_group (user_id, group_id)
           SELECT user_id, $2 FROM backoffice_user_group WHERE group_id = $1 ON CONFLICT DO NOTHING`,
          [group.id, target.id],
        );
      }
      await manager.query(`DELETE FROM backoffice_group WHERE id = $1`, [group.id]);
      return { group, members, target };
    });
    const { group } = result;
    await this.publish(
      GroupDeletedNotification,
      group.alias,
      { name: { from: group.name, to: null }, permissions: { from: textArray(group.permissions), to: null } },
      { movedMembersTo: result.members > 0 ? result.target!.alias : null, movedMembers: result.members },
    );
  }

  /**
   * Refuses (403 `forbidden`) a change of membership that would let the actor grant more than they hold: only
   * members of `admin` add or remove `admin`, and anyone else may only add or remove groups whose permissions
   * they hold themselves. Unknown aliases are left to the caller's validation.
   */
  async assertMayAssign(actor: Pick<BackOfficeUser, 'groups' | 'permissions'>, aliases: readonly string[]): Promise<void> {
    if (actor.groups.includes(ADMIN_GROUP_ALIAS) || aliases.length === 0) return;
    if (aliases.includes(ADMIN_GROUP_ALIAS)) throw BackOfficeGroupService.mayNotAssign(ADMIN_GROUP_ALIAS);
    const held = this.registry.effective(actor);
    const rows: GroupRow[] = await this.dataSource.query(`${SELECT_GROUP} WHERE g.alias = ANY($1::text[])`, [[...aliases]]);
    const beyond = rows.find((row) => this.registry.groupPermissions(row.alias, textArray(row.permissions)).some((k) => !held.has(k)));
    if (beyond) throw BackOfficeGroupService.mayNotAssign(beyond.alias);
  }

  private static mayNotAssign(alias: string): BackOfficeHttpError {
    return new BackOfficeHttpError(403, 'forbidden', `You may not add users to or remove them from "${alias}": it holds permissions you do not have.`);
  }

  private async findOr404(manager: EntityManager, alias: string, lock: boolean): Promise<GroupRow> {
    const [row] = await manager.query(`${SELECT_GROUP} WHERE g.alias = $1${lock ? ' FOR UPDATE OF g' : ''}`, [alias]);
    if (!row) throw BackOfficeHttpError.notFound('No such group.');
    return row;
  }

  private view(row: GroupRow): BackOfficeGroupView {
    return {
      alias: row.alias,
      name: row.name,
      permissions: this.registry.groupPermissions(row.alias, textArray(row.permissions)),
      requireTwoFactor: row.require_two_factor === true,
      memberCount: Number(row.member_count),
      builtIn: row.alias === ADMIN_GROUP_ALIAS,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
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

  private static checkName(name: string): string {
    const trimmed = name.trim();
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
