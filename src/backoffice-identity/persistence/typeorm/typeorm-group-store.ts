import type { BackOfficeListPage } from '../../common/list-page.js';
import { cappedCount } from './capped-count.js';
import { Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { requireHostDataSource } from './backoffice-data-source.provider.js';
import { DataSource, type EntityManager } from 'typeorm';
import {
  BackOfficeDuplicateGroupError,
  type BackOfficeGroupFields,
  type BackOfficeGroupRecord,
  type BackOfficeGroupStore,
} from '../../groups/group-store.interface.js';
import { aliases } from './typeorm-user-store.js';

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

function groupFromRow(row: GroupRow): BackOfficeGroupRecord {
  return {
    alias: row.alias,
    name: row.name,
    permissions: aliases(row.permissions),
    requireTwoFactor: row.require_two_factor === true,
    memberCount: Number(row.member_count),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/**
 * Groups in PostgreSQL (`backoffice_group`). Writes run in one transaction holding the group row
 * (`FOR UPDATE`); creations are serialised by an advisory lock so aliases stay unique ignoring case.
 */
@Injectable()
export class TypeOrmBackOfficeGroupStore implements BackOfficeGroupStore {
  constructor(@Optional() @InjectDataSource() private readonly dataSource: DataSource) {
    requireHostDataSource(dataSource);
  }

  async list(): Promise<BackOfficeGroupRecord[]> {
    const rows: GroupRow[] = await this.dataSource.query(`${SELECT_GROUP} ORDER BY g.alias`);
    return rows.map(groupFromRow);
  }

  /** A page by OFFSET / LIMIT in alias order (aliases are unique); the total exact up to 10,000 groups. */
  async listPage(page: BackOfficeListPage): Promise<{ items: BackOfficeGroupRecord[]; total: number; totalExact: boolean }> {
    const rows: GroupRow[] = await this.dataSource.query(`${SELECT_GROUP} ORDER BY g.alias OFFSET $1 LIMIT $2`, [page.skip, page.take]);
    const total = await cappedCount(this.dataSource, 'SELECT 1 FROM backoffice_group', []);
    return { items: rows.map(groupFromRow), total: total.value, totalExact: total.exact };
  }

  async find(alias: string): Promise<BackOfficeGroupRecord | null> {
    const row = await this.findRow(this.dataSource.manager, alias, false);
    return row ? groupFromRow(row) : null;
  }

  async findMany(wanted: readonly string[]): Promise<BackOfficeGroupRecord[]> {
    if (wanted.length === 0) return [];
    const rows: GroupRow[] = await this.dataSource.query(`${SELECT_GROUP} WHERE g.alias = ANY($1::text[]) ORDER BY g.alias`, [[...wanted]]);
    return rows.map(groupFromRow);
  }

  create(alias: string, fields: BackOfficeGroupFields, now: Date): Promise<BackOfficeGroupRecord> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('backoffice_group:create'))`);
      const [clash] = await manager.query(`SELECT alias FROM backoffice_group WHERE lower(alias) = lower($1)`, [alias]);
      if (clash) throw new BackOfficeDuplicateGroupError(clash.alias);
      await manager.query(
        `INSERT INTO backoffice_group (alias, name, permissions, require_two_factor, created_at, updated_at) VALUES ($1, $2, $3::text[], $4, $5, $5)`,
        [alias, fields.name, fields.permissions, fields.requireTwoFactor, now],
      );
      return groupFromRow((await this.findRow(manager, alias, false))!);
    });
  }

  update(
    alias: string,
    plan: (current: BackOfficeGroupRecord) => BackOfficeGroupFields | null,
    now: Date,
  ): Promise<{ before: BackOfficeGroupRecord; after: BackOfficeGroupRecord } | null> {
    return this.dataSource.transaction(async (manager) => {
      const row = await this.findRow(manager, alias, true);
      if (!row) return null;
      const before = groupFromRow(row);
      const fields = plan(before);
      if (!fields) return { before, after: before };
      await manager.query(`UPDATE backoffice_group SET name = $2, permissions = $3::text[], require_two_factor = $5, updated_at = $4 WHERE id = $1`, [
        row.id,
        fields.name,
        fields.permissions,
        now,
        fields.requireTwoFactor,
      ]);
      return { before, after: groupFromRow((await this.findRow(manager, alias, false))!) };
    });
  }

  delete(
    alias: string,
    moveMembersTo: string | undefined,
    check: (group: BackOfficeGroupRecord, target: BackOfficeGroupRecord | null) => void,
  ): Promise<{ group: BackOfficeGroupRecord; target: BackOfficeGroupRecord | null } | null> {
    return this.dataSource.transaction(async (manager) => {
      // Both rows locked in one order (by alias), whichever is deleted: two deletes at once that move their members into
      // each other's group would otherwise each hold one row and wait for the other (deadlock_detected, a 503).
      const moving = moveMembersTo !== undefined && moveMembersTo !== alias;
      const locked = new Map<string, GroupRow | null>();
      for (const each of moving ? [alias, moveMembersTo].sort() : [alias]) locked.set(each, await this.findRow(manager, each, true));
      const row = locked.get(alias);
      if (!row) return null;
      const targetRow = moving ? (locked.get(moveMembersTo) ?? null) : null;
      const group = groupFromRow(row);
      const target = targetRow ? groupFromRow(targetRow) : null;
      check(group, target);
      if (targetRow && group.memberCount > 0) {
        await manager.query(
          `INSERT INTO backoffice_user_group (user_id, group_id)
           SELECT user_id, $2 FROM backoffice_user_group WHERE group_id = $1 ON CONFLICT DO NOTHING`,
          [row.id, targetRow.id],
        );
      }
      await manager.query(`DELETE FROM backoffice_group WHERE id = $1`, [row.id]);
      return { group, target };
    });
  }

  private async findRow(manager: EntityManager, alias: string, lock: boolean): Promise<GroupRow | null> {
    const [row] = await manager.query(`${SELECT_GROUP} WHERE g.alias = $1${lock ? ' FOR UPDATE OF g' : ''}`, [alias]);
    return row ?? null;
  }
}
