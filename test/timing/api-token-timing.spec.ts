import { DataSource } from 'typeorm';
import { BackOfficeApiUserService } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { statementsSentDuring } from '../support/sent-statements.js';
import { compareMedians } from '../support/timing.js';

/**
 * OWASP ASVS 4.0 2.2.1 / 5.0 6.3.8 for the client credentials grant: a client id that does not exist must cost what a
 * wrong secret of a real client costs. The secret check is a SHA-256, so the database dominates: neither is counted
 * toward any lockout (a wrong secret of a 256-bit client secret locks nothing), and both do the same work, one read of
 * the client and one committed audit entry.
 */
describe('no client enumeration through token endpoint timing', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let clientId: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false } } });
    clientId = (await ctx.app.get(BackOfficeApiUserService).create({ name: 'Timing robot', groups: [] })).clientId;
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('OWASP ASVS 4.0 2.2.1: an unknown client id and a wrong secret of a real client: same status, same bytes, medians within 10% (40 each)', async () => {
    const http = new HttpClient(ctx.url);
    const bodies = new Set<string>();
    const token = async (id: string, i: number) => {
      const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: `bocs_${String(i).padStart(43, 'A')}` });
      const result = await http.request('POST', '/auth/token', { raw: form.toString(), contentType: 'application/x-www-form-urlencoded' });
      expect(result.status).toBe(401);
      bodies.add(result.text);
    };
    const unknownId = (i: number) => `boc_${String(i).padStart(24, 'Z')}`;
    for (let i = 0; i < 5; i++) {
      await token(clientId, i);
      await token(unknownId(i), i);
    }
    const result = await compareMedians(40, (i) => token(unknownId(i), i), (i) => token(clientId, i), { tolerance: 0.1 });
    console.log(`token 401 medians: unknown client ${result.medianA.toFixed(1)} ms, wrong secret ${result.medianB.toFixed(1)} ms, ratio ${result.ratio.toFixed(3)} (round ${result.round})`);
    expect(bodies.size).toBe(1);
    expect(result.ratio).toBeGreaterThan(0.9);
    expect(result.ratio).toBeLessThan(1.1);
  });

  it('OWASP ASVS 4.0 2.2.1: the same statements, in the same order, for an unknown client id, a wrong secret, a malformed secret and a client lockout already stored (one read of the client, one audit entry; no count), so the medians above compare like with like', async () => {
    const http = new HttpClient(ctx.url);
    const locked = (await ctx.app.get(BackOfficeApiUserService).create({ name: 'Locked timing robot', groups: [] })).clientId;
    await ctx.app.get(DataSource).query(`UPDATE backoffice_api_client SET lockout_end = $2 WHERE client_id = $1`, [locked, new Date(ctx.clock.now().getTime() + 3_600_000)]);
    const sentFor = async (id: string, secret: string) => {
      let status = 0;
      const sent = await statementsSentDuring(async () => {
        const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret });
        status = (await http.request('POST', '/auth/token', { raw: form.toString(), contentType: 'application/x-www-form-urlencoded' })).status;
      });
      expect(status).toBe(401);
      return sent.map((s) => s.name ?? s.text);
    };
    const unknown = await sentFor(`boc_${'Q'.repeat(24)}`, `bocs_${'A'.repeat(43)}`);
    expect(unknown).toHaveLength(2);
    expect(await sentFor(clientId, `bocs_${'B'.repeat(43)}`), 'a wrong secret').toEqual(unknown);
    expect(await sentFor(clientId, 'not-a-secret'), 'a malformed secret').toEqual(unknown);
    expect(await sentFor(locked, `bocs_${'C'.repeat(43)}`), 'a stored client lockout').toEqual(unknown);
  });
});
