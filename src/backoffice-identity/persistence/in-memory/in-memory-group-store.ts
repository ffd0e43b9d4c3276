import { countedPage, type BackOfficeListPage } from '../../common/list-page.js';
import {
  BackOfficeDuplicateGroupError,
  type BackOfficeGroupFields,
  type BackOfficeGroupRecord,
  type BackOfficeGroupStore,
} from '../../groups/group-store.interface.js';
import { InMemoryBackOfficeState, KeyedMutex, type InMemoryGroup } from './in-memory-state.js';

/** Groups in memory, sharing memberships with the in-memory user store of the same state. */
export class InMemoryBackOfficeGroupStore implements BackOfficeGroupStore {
  private readonly locks = new KeyedMutex();

  constructor(private readonly state: InMemoryBackOfficeState = new InMemoryBackOfficeState()) {}

  private record(group: InMemoryGroup): BackOfficeGroupRecord {
    let memberCount = 0;
    for (const user of this.state.users.values()) if (user.groups.includes(group.alias)) memberCount++;
    return { ...group, permissions: [...group.permissions], createdAt: new Date(group.createdAt), updatedAt: new Date(group.updatedAt), memberCount };
  }

  async list(): Promise<BackOfficeGroupRecord[]> {
    return [...this.state.groups.values()].sort((a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0)).map((g) => this.record(g));
  }

  async listPage(page: BackOfficeListPage): Promise<{ items: BackOfficeGroupRecord[]; total: number; totalExact: boolean }> {
    return countedPage(await this.list(), page);
  }

  async find(alias: string): Promise<BackOfficeGroupRecord | null> {
    const group = this.state.groups.get(alias);
    return group ? this.record(group) : null;
  }

  async findMany(aliases: readonly string[]): Promise<BackOfficeGroupRecord[]> {
    return (await this.list()).filter((g) => aliases.includes(g.alias));
  }

  create(alias: string, fields: BackOfficeGroupFields, now: Date): Promise<BackOfficeGroupRecord> {
    return this.locks.run('create', async () => {
      const clash = [...this.state.groups.keys()].find((a) => a.toLowerCase() === alias.toLowerCase());
      if (clash !== undefined) throw new BackOfficeDuplicateGroupError(clash);
      const group: InMemoryGroup = { alias, name: fields.name, permissions: [...fields.permissions], requireTwoFactor: fields.requireTwoFactor, createdAt: now, updatedAt: now };
      this.state.groups.set(alias, group);
      return this.record(group);
    });
  }

  update(
    alias: string,
    plan: (current: BackOfficeGroupRecord) => BackOfficeGroupFields | null,
    now: Date,
  ): Promise<{ before: BackOfficeGroupRecord; after: BackOfficeGroupRecord } | null> {
    return this.locks.run(`group:${alias}`, async () => {
      const group = this.state.groups.get(alias);
      if (!group) return null;
      const before = this.record(group);
      const fields = plan(before);
      if (!fields) return { before, after: before };
      Object.assign(group, { name: fields.name, permissions: [...fields.permissions], requireTwoFactor: fields.requireTwoFactor, updatedAt: now });
      return { before, after: this.record(group) };
    });
  }

  delete(
    alias: string,
    moveMembersTo: string | undefined,
    check: (group: BackOfficeGroupRecord, target: BackOfficeGroupRecord | null) => void,
  ): Promise<{ group: BackOfficeGroupRecord; target: BackOfficeGroupRecord | null } | null> {
    return this.locks.run(`group:${alias}`, async () => {
      const stored = this.state.groups.get(alias);
      if (!stored) return null;
      const targetStored = moveMembersTo !== undefined && moveMembersTo !== alias ? this.state.groups.get(moveMembersTo) : undefined;
      const group = this.record(stored);
      const target = targetStored ? this.record(targetStored) : null;
      check(group, target);
      for (const user of this.state.users.values()) {
        if (targetStored && user.groups.includes(alias) && !user.groups.includes(targetStored.alias)) user.groups.push(targetStored.alias);
      }
      this.state.groups.delete(alias);
      this.state.dropMembership(alias);
      return { group, target };
    });
  }
}
