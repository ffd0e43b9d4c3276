import { redactSecretsWhenLogged, type BackOfficeUser } from '../../users/backoffice-user.js';

/** A group as the in-memory stores keep it. */
export interface InMemoryGroup {
  alias: string;
  name: string;
  permissions: string[];
  requireTwoFactor: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** A user as the in-memory stores keep it: the port's fields, groups as stored aliases. */
export type InMemoryUser = Omit<BackOfficeUser, 'permissions' | 'twoFactorRequiredByGroup'>;

/** The groups a fresh database has (the initial migration's seed). */
const SEEDED_GROUPS: Array<[string, string]> = [
  ['admin', 'Administrators'],
  ['editor', 'Editors'],
  ['writer', 'Writers'],
  ['translator', 'Translators'],
  ['sensitiveData', 'Sensitive data'],
];

/**
 * The data the in-memory stores share (users and groups are read across stores, as tables are joined in
 * the database). Every store method reads and writes it without awaiting in between, so each call is atomic
 * in Node's single thread.
 */
export class InMemoryBackOfficeState {
  readonly users = new Map<string, InMemoryUser>();
  readonly groups = new Map<string, InMemoryGroup>();

  constructor(now: Date = new Date()) {
    for (const [alias, name] of SEEDED_GROUPS) {
      this.groups.set(alias, { alias, name, permissions: [], requireTwoFactor: false, createdAt: now, updatedAt: now });
    }
  }

  /** A copy of the user as the port returns it: groups sorted, with their permissions and 2FA requirement. */
  toUser(stored: InMemoryUser): BackOfficeUser {
    const groups = stored.groups.filter((alias) => this.groups.has(alias)).sort();
    const records = groups.map((alias) => this.groups.get(alias)!);
    return redactSecretsWhenLogged({
      ...stored,
      groups,
      permissions: [...new Set(records.flatMap((g) => g.permissions))].sort(),
      twoFactorRequiredByGroup: records.some((g) => g.requireTwoFactor),
    });
  }

  /** Deletes groups' memberships when a group goes (the foreign key's cascade). */
  dropMembership(alias: string): void {
    for (const user of this.users.values()) user.groups = user.groups.filter((g) => g !== alias);
  }
}

/** Serialises async work per key (the in-memory stand-in for a row or advisory lock). */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous.catch(() => undefined);
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** A copy of a date (stores never hand out their own objects). */
export const copyDate = (date: Date | null | undefined): Date | null => (date ? new Date(date.getTime()) : null);
