import { createHash, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestDatabase, dbKind, type TestDatabase } from '../support/database.js';
import { typeOrmOptionsFor } from '../support/identity-app.js';
import {
  backOfficeIdentityEntities,
  TypeOrmBackOfficeApiClientStore,
  TypeOrmBackOfficeAuditStore,
  TypeOrmBackOfficeExternalLoginSessionStore,
  TypeOrmBackOfficeGroupStore,
  TypeOrmBackOfficePendingSignInStore,
  TypeOrmBackOfficeSessionStore,
  TypeOrmBackOfficeUserStore,
  type BackOfficePendingSignIn,
  type BackOfficeStores,
} from '../../src/backoffice-identity/index.js';
import { runBackOfficeStoreContract } from '../../src/backoffice-identity/testing/index.js';
import { failingContractTests } from '../support/store-contract-failures.js';

/** The TypeORM stores on one database per file (PostgreSQL, or PGlite), built as the module builds them. */
let db: TestDatabase;
let source: DataSource;
let stores: BackOfficeStores;

beforeAll(async () => {
  db = await createTestDatabase();
  source = new DataSource({ ...typeOrmOptionsFor(db), entities: backOfficeIdentityEntities });
  await source.initialize();
  stores = {
    userStore: new TypeOrmBackOfficeUserStore(source),
    sessionStore: new TypeOrmBackOfficeSessionStore(source),
    pendingSignInStore: new TypeOrmBackOfficePendingSignInStore(source),
    groupStore: new TypeOrmBackOfficeGroupStore(source),
    apiClientStore: new TypeOrmBackOfficeApiClientStore(source),
    externalLoginSessionStore: new TypeOrmBackOfficeExternalLoginSessionStore(source),
    auditStore: new TypeOrmBackOfficeAuditStore(source),
  };
});

afterAll(async () => {
  await source?.destroy();
  await db?.drop();
});

// One database for the file: the audit part of the contract lists the whole trail, so it is emptied before each audit test.
const clearAuditTrail = async () => {
  await source.query('TRUNCATE backoffice_audit_entry RESTART IDENTITY');
};
runBackOfficeStoreContract(`TypeORM stores on ${dbKind() === 'postgres' ? 'PostgreSQL' : 'PGlite'}`, async () => ({ ...stores, clearAuditTrail }), { describe, it, expect });

/** A host import store written before `refuseTarget` existed: it forwards the options it knows and drops the new one. */
class IgnoresRefuseTarget extends TypeOrmBackOfficeUserStore {
  override importUsers(...[rows, options, now]: Parameters<TypeOrmBackOfficeUserStore['importUsers']>) {
    const { refuseTarget: _dropped, ...known } = options;
    return super.importUsers(rows, known, now);
  }
}

describe('The store contract and an import store ignoring refuseTarget (OWASP ASVS 5.0 7.5.1 / 4.0 V2.5)', () => {
  it('fails a user store whose importUsers drops refuseTarget (a directory-managed user the host manager names would be overwritten)', async () => {
    expect(await failingContractTests(() => ({ ...stores, userStore: new IgnoresRefuseTarget(source) }), /refuseTarget/u)).toHaveLength(1);
  });
});

describe('TypeORM pending sign-in store: a slot is taken over only by a step of the same user and purpose', () => {
  const step = (userId: string | null, purpose: string): BackOfficePendingSignIn => ({
    kind: 'passkey',
    keyHash: createHash('sha256').update(randomUUID()).digest('hex'),
    purpose,
    browserHash: null,
    userId,
    securityStamp: null,
    payload: null,
    expiresAt: new Date(Date.now() + 60_000),
    slot: `slot-${randomUUID()}`,
  });
  it('refuses a step of another user (or none) or another purpose for a slot held, and keeps the held step', async () => {
    const name = `slot-${randomUUID()}`;
    const user = await stores.userStore.create(
      { username: `${name}@example.test`, normalizedUsername: `${name}@EXAMPLE.TEST`, email: `${name}@example.test`, normalizedEmail: `${name}@EXAMPLE.TEST`, name, passwordHash: 'h', securityStamp: 's', isApproved: true, invitedAt: null, groups: [], kind: 'person' },
      new Date(),
    );
    const held = step(user.id, 'second_factor');
    await stores.pendingSignInStore.create(held, new Date());
    for (const other of [step(null, 'second_factor'), step(user.id, 'authentication')]) {
      await expect(stores.pendingSignInStore.create({ ...other, slot: held.slot }, new Date()), 'a step of another owner took the slot over').rejects.toThrow(/slot/u);
    }
    expect(await stores.pendingSignInStore.find('passkey', held.keyHash, new Date())).not.toBeNull();
  });
});
