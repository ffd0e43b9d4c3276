import * as bcrypt from 'bcrypt';
import { DataSource } from 'typeorm';
import { BackOfficeEvents, BCRYPT_SHA256_PREFIX } from '../../src/backoffice-identity/index.js';
import { expectClientError } from '../support/bad-input.js';
import { CapturingLogger } from '../support/capturing-logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ASPNET_PASSWORD, EXTRA_DATA_VECTOR, TOO_SHORT_VECTOR, VALID_VECTORS } from '../support/hash-vectors.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';

const password = 'correct horse battery staple';

/** A V3 SHA-256 hash header asking for `iterations`, with a 16-byte salt and a 32-byte subkey. */
function v3WithIterations(iterations: number): string {
  const header = Buffer.alloc(13);
  header[0] = 1;
  header.writeUInt32BE(1, 1);
  header.writeUInt32BE(iterations, 5);
  header.writeUInt32BE(16, 9);
  return Buffer.concat([header, Buffer.alloc(48, 3)]).toString('base64');
}

describe('Importing users with their password hashes (POST /users/import, importUsers)', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let dataSource: DataSource;
  const logger = new CapturingLogger();
  let counter = 0;
  const email = (tag = 'imp') => `${tag}${++counter}.${Date.now()}@example.com`;
  const importUsers = (users: unknown[], extra: Record<string, unknown> = {}) => admin.post('/users/import', { users, ...extra });
  const storedHash = async (address: string) => (await ctx.userManager.findByEmail(address))?.passwordHash ?? null;
  const userCount = async () => ctx.userManager.store.count();

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      logger,
      identity: { rateLimits: { enabled: false }, lockout: { maxFailedAccessAttempts: 50 } },
      // 1,000 records with hashes are ~300 kB: above Express's default 100 kB JSON limit (see the README).
      jsonBodyLimitBytes: 2 * 1024 * 1024,
    });
    await ctx.userManager.createUser({ email: 'import-boss@example.com', name: 'Boss', password, groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login('import-boss@example.com', password)).status).toBe(200);
    dataSource = ctx.app.get(DataSource);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  describe('every published vector', () => {
    for (const vector of VALID_VECTORS) {
      it(`${vector.name}: wrong password 401, old password 200, stored hash is the module's bcrypt afterwards`, async () => {
        const address = email('vector');
        const response = await importUsers([{ email: address, name: vector.name, groups: ['editor'], passwordFormat: vector.format, passwordHash: vector.hash }]);
        expect(response.status, response.text).toBe(200);
        expect(response.body.results).toEqual([{ email: address, outcome: 'created' }]);
        expect(response.text).not.toContain(vector.hash);
        expect(await storedHash(address)).toBe(`$bo-import$${vector.format}$${vector.hash}`);

        expectClientError(await new HttpClient(ctx.url).login(address, `${vector.password}x`), 401);
        expect(await storedHash(address)).toBe(`$bo-import$${vector.format}$${vector.hash}`);

        const client = new HttpClient(ctx.url);
        const signIn = await client.login(address, vector.password);
        expect(signIn.status, signIn.text).toBe(200);
        expect(signIn.body.user.groups).toEqual(['editor']);
        const rehashed = (await storedHash(address))!;
        expect(rehashed.startsWith(BCRYPT_SHA256_PREFIX)).toBe(true);
        expect(bcrypt.getRounds(rehashed.slice(BCRYPT_SHA256_PREFIX.length))).toBe(4);
        // The re-hash is not a password change: the session made by this sign-in stays valid.
        expect((await client.get('/auth/me')).status).toBe(200);
        expect((await new HttpClient(ctx.url).login(address, vector.password)).status).toBe(200);
        expectClientError(await new HttpClient(ctx.url).login(address, `${vector.password}x`), 401);
      });
    }

    it('failure vector "too short" is refused at import; nothing is written', async () => {
      const address = email('short');
      const before = await userCount();
      const response = await importUsers([{ email: address, name: 'Short', groups: [], passwordFormat: 'aspnet-identity', passwordHash: TOO_SHORT_VECTOR }]);
      expect(response.status).toBe(200);
      expect(response.body.results[0]).toMatchObject({ email: address, outcome: 'invalid', errors: [{ code: 'invalid_password_hash' }] });
      expect(await userCount()).toBe(before);
      expect(await ctx.userManager.findByEmail(address)).toBeNull();
    });

    it('failure vector "extra data" never signs in (401) and stays as imported', async () => {
      const address = email('extra');
      const response = await importUsers([{ email: address, name: 'Extra', groups: [], passwordFormat: 'aspnet-identity', passwordHash: EXTRA_DATA_VECTOR }]);
      expect(response.body.results[0].outcome).toBe('created');
      expectClientError(await new HttpClient(ctx.url).login(address, ASPNET_PASSWORD), 401);
      expect(await storedHash(address)).toBe(`$bo-import$aspnet-identity$${EXTRA_DATA_VECTOR}`);
    });

    it('a bcrypt hash from another system signs in and is re-hashed', async () => {
      const address = email('bcrypt');
      const hash = await bcrypt.hash('a php era passphrase', 5);
      const response = await importUsers([{ email: address, name: 'Php', groups: [], passwordFormat: 'bcrypt', passwordHash: hash.replace('$2b$', '$2y$') }]);
      expect(response.body.results[0].outcome).toBe('created');
      expect((await new HttpClient(ctx.url).login(address, 'a php era passphrase')).status).toBe(200);
      expect((await storedHash(address))!.startsWith(BCRYPT_SHA256_PREFIX)).toBe(true);
    });

    it('a user imported without a hash cannot sign in with any password', async () => {
      const address = email('nohash');
      expect((await importUsers([{ email: address, name: 'No hash', groups: [] }])).body.results[0].outcome).toBe('created');
      expect(await storedHash(address)).toBeNull();
      expectClientError(await new HttpClient(ctx.url).login(address, ASPNET_PASSWORD), 401);
    });
  });

  describe('records', () => {
    it('keeps createdAt, lastLoginAt and isApproved; maps groups through groupMap (null drops one)', async () => {
      const address = email('fields');
      const response = await importUsers(
        [{ email: address, name: '  Zoë Ünïcode  ', groups: ['administrators', 'legacy', 'writer'], isApproved: false, createdAt: '2019-03-04T05:06:07Z', lastLoginAt: '2024-01-02T03:04:05.000Z' }],
        { groupMap: { administrators: 'admin', legacy: null } },
      );
      expect(response.body.results[0].outcome).toBe('created');
      const user = (await ctx.userManager.findByEmail(address))!;
      expect(user.name).toBe('Zoë Ünïcode');
      expect(user.groups.sort()).toEqual(['admin', 'writer']);
      expect(user.isApproved).toBe(false);
      expect(user.createdAt.toISOString()).toBe('2019-03-04T05:06:07.000Z');
      expect(user.lastLoginAt?.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    });

    it('reports every malformed record with a code, writes nothing of them, and still imports the good ones', async () => {
      const good = email('good');
      const cases: Array<[unknown, string]> = [
        [null, 'invalid_record'],
        [42, 'invalid_record'],
        ['ed@example.com', 'invalid_record'],
        [[{ email: email() }], 'invalid_record'],
        [{ name: 'No email', groups: [] }, 'invalid_email'],
        [{ email: 'not an email', name: 'X', groups: [] }, 'invalid_email'],
        [{ email: { $gt: '' }, name: 'X', groups: [] }, 'invalid_email'],
        [{ email: `${'a'.repeat(300)}@example.com`, name: 'X', groups: [] }, 'invalid_email'],
        [{ email: email(), groups: [] }, 'invalid_name'],
        [{ email: email(), name: 'é'.repeat(10_000), groups: [] }, 'invalid_name'],
        [{ email: email(), name: 'X', groups: 'editor' }, 'invalid_groups'],
        [{ email: email(), name: 'X', groups: [1, 2] }, 'invalid_groups'],
        [{ email: email(), name: 'X', groups: ['no-such-group'] }, 'unknown_group'],
        [{ email: email(), name: 'X', groups: [], isApproved: 'yes' }, 'invalid_is_approved'],
        [{ email: email(), name: 'X', groups: [], createdAt: 'yesterday' }, 'invalid_created_at'],
        [{ email: email(), name: 'X', groups: [], lastLoginAt: '2999-01-01T00:00:00Z' }, 'invalid_last_login_at'],
        [{ email: email(), name: 'X', groups: [], password_hash: 'x' }, 'unknown_field'],
        [{ email: email(), name: 'X', groups: [], passwordHash: VALID_VECTORS[0].hash }, 'unknown_password_format'],
        [{ email: email(), name: 'X', groups: [], passwordFormat: 'md5', passwordHash: 'abc' }, 'unknown_password_format'],
        [{ email: email(), name: 'X', groups: [], passwordFormat: 'aspnet-identity' }, 'invalid_password_hash'],
        [{ email: email(), name: 'X', groups: [], passwordFormat: 'aspnet-identity', passwordHash: VALID_VECTORS[0].hash.slice(0, 40) }, 'invalid_password_hash'],
        [{ email: email(), name: 'X', groups: [], passwordFormat: 'aspnet-identity', passwordHash: 'A'.repeat(100_000) }, 'invalid_password_hash'],
        [{ email: email(), name: 'X', groups: [], passwordFormat: 'umbraco-sha1', passwordHash: VALID_VECTORS[3].hash }, 'invalid_password_hash'],
        [{ email: email(), name: 'X', groups: [], passwordFormat: 'aspnet-identity', passwordHash: v3WithIterations(10_000_001) }, 'iteration_count_too_high'],
        [{ email: email(), name: 'X', groups: [], passwordFormat: 'aspnet-identity', passwordHash: v3WithIterations(0xffffffff) }, 'iteration_count_too_high'],
      ];
      const before = await userCount();
      const response = await importUsers([...cases.map(([record]) => record), { email: good, name: 'Good', groups: ['writer'] }]);
      expect(response.status, response.text).toBe(200);
      const results = response.body.results as Array<{ outcome: string; errors?: Array<{ code: string }> }>;
      expect(results).toHaveLength(cases.length + 1);
      cases.forEach(([record, code], i) => {
        expect(results[i].outcome, JSON.stringify(record).slice(0, 80)).toBe('invalid');
        expect(results[i].errors!.map((e) => e.code), JSON.stringify(record).slice(0, 80)).toContain(code);
      });
      expect(results[cases.length].outcome).toBe('created');
      expect(await userCount()).toBe(before + 1);
      expect(response.text).not.toContain(VALID_VECTORS[0].hash.slice(0, 40));
    });

    it('OWASP ASVS 4.0 5.1.4 / 5.0 1.5.3: a passwordFormat naming an Object.prototype key (constructor, __proto__, any letter case) is unknown_password_format for that record, never a 500 for the request', async () => {
      const good = email('proto-good');
      const formats = ['constructor', '__proto__', 'Constructor', '__PROTO__'];
      const before = await userCount();
      const response = await importUsers([
        ...formats.map((passwordFormat) => ({ email: email('proto'), name: 'X', groups: [], passwordFormat, passwordHash: VALID_VECTORS[0].hash })),
        { email: good, name: 'Good', groups: ['writer'] },
      ]);
      expect(response.status, response.text).toBe(200);
      const results = response.body.results as Array<{ outcome: string; errors?: Array<{ code: string }> }>;
      formats.forEach((format, i) => {
        expect(results[i].outcome, format).toBe('invalid');
        expect(results[i].errors!.map((e) => e.code), format).toEqual(['unknown_password_format']);
      });
      expect(results[formats.length].outcome).toBe('created');
      expect(await userCount()).toBe(before + 1);
    });

    it('duplicate emails inside one batch: the first is created, the later ones are invalid (duplicate_in_import)', async () => {
      const address = email('dup');
      const response = await importUsers([
        { email: address, name: 'First', groups: [] },
        { email: address.toUpperCase(), name: 'Second', groups: [] },
        { email: ` ${address} `, name: 'Third', groups: [] },
      ]);
      expect(response.body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['created', 'invalid', 'invalid']);
      expect(response.body.results[1].errors[0].code).toBe('duplicate_in_import');
      expect(response.body.results[2].errors[0].code).toBe('duplicate_in_import');
      expect((await ctx.userManager.findByEmail(address))!.name).toBe('First');
    });

    it('an unknown group in the groupMap target is reported per record', async () => {
      const response = await importUsers([{ email: email(), name: 'X', groups: ['designers'] }], { groupMap: { designers: 'nope' } });
      expect(response.body.results[0].errors.map((e: { code: string }) => e.code)).toEqual(['unknown_group']);
    });
  });

  describe('conflicts, dry run, batches', () => {
    it('onConflict skip (default), fail and update', async () => {
      const address = email('conflict');
      expect((await importUsers([{ email: address, name: 'Original', groups: ['writer'] }])).body.results[0].outcome).toBe('created');
      const original = (await ctx.userManager.findByEmail(address))!;

      const skipped = await importUsers([{ email: address, name: 'Skipped', groups: [] }]);
      expect(skipped.body.results[0]).toEqual({ email: address, outcome: 'skipped' });
      const failed = await importUsers([{ email: address, name: 'Failed', groups: [] }], { onConflict: 'fail' });
      expect(failed.body.results[0]).toMatchObject({ outcome: 'invalid', errors: [{ code: 'duplicate_email' }] });
      expect((await ctx.userManager.findByEmail(address))!.name).toBe('Original');

      const updated = await importUsers(
        [{ email: address, name: 'Updated', groups: ['editor'], passwordFormat: VALID_VECTORS[4].format, passwordHash: VALID_VECTORS[4].hash }],
        { onConflict: 'update' },
      );
      expect(updated.body.results[0]).toEqual({ email: address, outcome: 'updated' });
      const after = (await ctx.userManager.findByEmail(address))!;
      expect(after.id).toBe(original.id);
      expect(after.name).toBe('Updated');
      expect(after.groups).toEqual(['editor']);
      expect(after.securityStamp).not.toBe(original.securityStamp);
      expect((await new HttpClient(ctx.url).login(address, VALID_VECTORS[4].password)).status).toBe(200);
    });

    it('update refuses to take away the last enabled admin (last_admin), in the same transaction as the rest', async () => {
      const admins = await dataSource.query(
        `SELECT count(*)::int AS n FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id JOIN backoffice_group g ON g.id = ug.group_id WHERE g.alias = 'admin' AND u.is_approved`,
      );
      expect(admins[0].n).toBeGreaterThanOrEqual(1);
      // Demote every approved admin at once: at least one must stay.
      const all: Array<{ email: string }> = await dataSource.query(
        `SELECT u.email FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id JOIN backoffice_group g ON g.id = ug.group_id WHERE g.alias = 'admin' AND u.is_approved`,
      );
      const response = await importUsers(all.map((u) => ({ email: u.email, name: 'Demoted', groups: ['editor'] })), { onConflict: 'update' });
      const outcomes = response.body.results.map((r: { outcome: string; errors?: Array<{ code: string }> }) => r.errors?.[0]?.code ?? r.outcome);
      expect(outcomes.filter((o: string) => o === 'last_admin')).toHaveLength(1);
      const remaining = await dataSource.query(
        `SELECT count(*)::int AS n FROM backoffice_user u JOIN backoffice_user_group ug ON ug.user_id = u.id JOIN backoffice_group g ON g.id = ug.group_id WHERE g.alias = 'admin' AND u.is_approved`,
      );
      expect(remaining[0].n).toBe(1);
      expect(outcomes.filter((o: string) => o === 'updated')).toHaveLength(all.length - 1);
    });

    it('dryRun reports what would happen and writes nothing', async () => {
      const address = email('dry');
      const before = await userCount();
      const response = await importUsers([{ email: address, name: 'Dry', groups: [] }, { email: 'bad', name: 'X', groups: [] }], { dryRun: true });
      expect(response.body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['created', 'invalid']);
      expect(response.body.summary).toEqual({ total: 2, created: 1, updated: 0, skipped: 0, invalid: 1 });
      expect(await userCount()).toBe(before);
      expect(await ctx.userManager.findByEmail(address)).toBeNull();
    });

    it('1,000 records in one request are one transaction; 1,001 are refused with 413 too_many_records and nothing written', async () => {
      const tag = `bulk${Date.now()}`;
      const records = Array.from({ length: 1000 }, (_, i) => ({ email: `${tag}.${i}@example.com`, name: `Bulk ${i}`, groups: ['writer'], passwordFormat: VALID_VECTORS[2].format, passwordHash: VALID_VECTORS[2].hash }));
      const before = await userCount();
      const tooMany = await importUsers([...records, { email: `${tag}.x@example.com`, name: 'One too many', groups: [] }]);
      expectClientError(tooMany, 413);
      expect(tooMany.body.code).toBe('too_many_records');
      expect(await userCount()).toBe(before);
      const response = await importUsers(records);
      expect(response.status, response.text.slice(0, 300)).toBe(200);
      expect(response.body.summary.created).toBe(1000);
      expect(await userCount()).toBe(before + 1000);
      expect((await ctx.userManager.findByEmail(`${tag}.999@example.com`))!.groups).toEqual(['writer']);
    });

    it('the manager imports more than 1,000 records in batches (importUsers in code)', async () => {
      const tag = `code${Date.now()}`;
      const records = Array.from({ length: 1203 }, (_, i) => ({ email: `${tag}.${i}@example.com`, name: `Code ${i}`, groups: [] }));
      records[1100] = { email: `${tag}.0@example.com`, name: 'dup of the first batch', groups: [] };
      const results = await ctx.userManager.importUsers(records);
      expect(results).toHaveLength(1203);
      expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1202);
      expect(results[1100].outcome).toBe('skipped');
      await expect(ctx.userManager.importUsers(records, { onConflict: 'merge' as never })).rejects.toThrow(/onConflict/);
      await expect(ctx.userManager.importUsers('x' as never)).rejects.toThrow(TypeError);
    });
  });

  describe('HTTP', () => {
    it('only admins may import (403 editor, 401 anonymous)', async () => {
      await ctx.userManager.createUser({ email: 'import-editor@example.com', name: 'Ed', password, groups: ['editor'] });
      const editor = new HttpClient(ctx.url);
      await editor.login('import-editor@example.com', password);
      const body = { users: [{ email: email(), name: 'X', groups: ['admin'] }] };
      expectClientError(await editor.post('/users/import', body), 403);
      expectClientError(await new HttpClient(ctx.url).post('/users/import', body), 401);
      expect(await ctx.userManager.findByEmail(body.users[0].email)).toBeNull();
    });

    it('malformed bodies get a 4xx with a code, never a 5xx', async () => {
      const bodies: Array<{ raw?: string; body?: unknown; status?: number }> = [
        { raw: '{"users":[' },
        { raw: 'null' },
        { raw: '[1,2]' },
        { body: {} },
        { body: { users: 'alice@example.com' } },
        { body: { users: { 0: {} } } },
        { body: { users: null } },
        { body: { users: [], onConflict: 'merge' } },
        { body: { users: [], dryRun: 'yes' } },
        { body: { users: [], groupMap: ['admin'] } },
        { body: { users: [], groupMap: { a: 5 } } },
        { body: { users: [], extra: true } },
        { body: { users: [{ email: 'nul\u0000@example.com', name: 'x', groups: [] }] } },
        { raw: JSON.stringify({ users: [{ email: 'x@example.com', name: 'x'.repeat(3_000_000), groups: [] }] }), status: 413 },
      ];
      for (const c of bodies) {
        const result = await admin.request('POST', '/users/import', c.raw !== undefined ? { raw: c.raw } : { body: c.body });
        expectClientError(result, c.status);
      }
      const empty = await importUsers([]);
      expect(empty.status).toBe(200);
      expect(empty.body).toEqual({ results: [], summary: { total: 0, created: 0, updated: 0, skipped: 0, invalid: 0 } });
    });

    it('one audit entry per import with the counts; hashes appear in no audit entry, response or log line (ASVS 7.1.1)', async () => {
      const startedAt = new Date();
      const hash = VALID_VECTORS[1].hash;
      await importUsers([
        { email: email('audit'), name: 'A', groups: [], passwordFormat: 'aspnet-identity', passwordHash: hash },
        { email: email('audit'), name: 'B', groups: [], passwordFormat: 'aspnet-identity', passwordHash: TOO_SHORT_VECTOR },
      ]);
      const entries = await dataSource.query(`SELECT event, performing_user_id, details FROM backoffice_audit_entry WHERE event = $1 AND created_at >= $2`, [
        BackOfficeEvents.UsersImported,
        startedAt,
      ]);
      expect(entries).toHaveLength(1);
      const boss = (await ctx.userManager.findByEmail('import-boss@example.com'))!;
      expect(entries[0].performing_user_id).toBe(boss.id);
      expect(entries[0].details).toEqual({ total: 2, created: 1, updated: 0, skipped: 0, invalid: 1, dryRun: false, onConflict: 'skip', source: 'api' });
      const allAudit = JSON.stringify(await dataSource.query(`SELECT details FROM backoffice_audit_entry`));
      const logs = logger.lines.join('\n');
      for (const secret of [hash, TOO_SHORT_VECTOR, ...VALID_VECTORS.map((v) => v.hash)]) {
        expect(allAudit).not.toContain(secret.slice(8, 40));
        expect(logs).not.toContain(secret.slice(8, 40));
      }
    });
  });
});
