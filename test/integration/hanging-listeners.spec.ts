import { Injectable } from '@nestjs/common';
import { EventEmitter2, OnEvent } from '@nestjs/event-emitter';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createIdentityApp, type IdentityApp } from '../support/identity-app.js';
import { CapturingLogger } from '../support/capturing-logger.js';
import { HttpClient } from '../support/http-client.js';
import { within } from '../support/within.js';
import { BackOfficeEvents, UserLogoutSuccessNotification, type BackOfficeUser } from '../../src/backoffice-identity/index.js';

const LIMIT_MS = 200;

/**
 * A host provider's listeners that hang while `hanging` is on: they wait for `release()`, then (the logout one) set a
 * `signOutRedirectUrl`, long after the module stopped waiting. `suppressErrors: false`: their failures reach the
 * module's publisher.
 */
@Injectable()
class HangingHostListener {
  static hanging = false;
  private static readonly waiting: Array<() => void> = [];

  /** Lets every hanging listener go on. */
  static release(): void {
    for (const resume of HangingHostListener.waiting.splice(0)) resume();
  }

  private static hang(): Promise<void> {
    return new Promise<void>((resolve) => HangingHostListener.waiting.push(resolve));
  }

  @OnEvent(BackOfficeEvents.LoginSuccess, { suppressErrors: false })
  async onLogin() {
    if (HangingHostListener.hanging) await HangingHostListener.hang();
  }

  @OnEvent(BackOfficeEvents.LogoutSuccess, { suppressErrors: false })
  async onLogout(notification: UserLogoutSuccessNotification) {
    if (!HangingHostListener.hanging) return;
    await HangingHostListener.hang();
    notification.signOutRedirectUrl = 'https://slow-webhook.example.com/logout';
  }
}

describe('OWASP ASVS 5.0 16.5.2: a host notification listener that never settles does not hang sign-in or sign-out', () => {
  const password = 'correct horse battery staple';
  const logger = new CapturingLogger();
  let db: TestDatabase;
  let ctx: IdentityApp;
  let admin: HttpClient;
  let counter = 0;
  const newUser = async (): Promise<BackOfficeUser> =>
    (await ctx.userManager.createUser({ email: `hang${++counter}@example.com`, name: 'Hang', password, groups: ['editor'] })).value!;
  const auditOf = async (event: string, userId: string) =>
    (await admin.get(`/audit?event=${event}&userId=${userId}`)).body.items as Array<{ details: Record<string, unknown> }>;
  const timedOutLines = (event: string) => logger.lines.filter((line) => line.includes(`A listener of ${event} did not finish within ${LIMIT_MS} ms`));

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, {
      identity: { rateLimits: { enabled: false }, notifications: { listenerTimeoutMs: LIMIT_MS } },
      providers: [HangingHostListener],
      logger,
    });
    await ctx.userManager.createUser({ email: 'root@example.com', name: 'Root Admin', password, groups: ['admin'] });
    admin = new HttpClient(ctx.url);
    expect((await admin.login('root@example.com', password)).status).toBe(200);
  });
  afterEach(() => {
    HangingHostListener.hanging = false;
    HangingHostListener.release();
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  it('POST /auth/login answers within the limit, the session works, the timeout is logged once and the audit row is written', async () => {
    const user = await newUser();
    HangingHostListener.hanging = true;
    const http = new HttpClient(ctx.url);
    const login = await within(http.login(user.email, password), 5000);
    expect(login, 'POST /auth/login is still pending after 5 s').not.toBe('still pending');
    if (login === 'still pending') return;
    expect(login.status, login.text).toBe(200);
    expect(login.body.status).toBe('success');
    expect((await http.get('/auth/me')).status).toBe(200);
    expect(timedOutLines(BackOfficeEvents.LoginSuccess)).toHaveLength(1);
    expect(await auditOf(BackOfficeEvents.LoginSuccess, user.id)).toHaveLength(1);
  });

  it('POST /auth/logout answers within the limit without the hanging listener\'s URL; set late, the URL is ignored with one warning and reaches no later response', async () => {
    const user = await newUser();
    const first = new HttpClient(ctx.url);
    const second = new HttpClient(ctx.url);
    expect((await first.login(user.email, password)).status).toBe(200);
    expect((await second.login(user.email, password)).status).toBe(200);
    HangingHostListener.hanging = true;
    const logout = await within(first.post('/auth/logout'), 5000);
    expect(logout, 'POST /auth/logout is still pending after 5 s').not.toBe('still pending');
    if (logout === 'still pending') return;
    expect(logout.status, logout.text).toBe(200);
    expect(logout.body).toEqual({ signOutRedirectUrl: null });
    expect((await first.get('/auth/me')).status).toBe(401);
    expect(timedOutLines(BackOfficeEvents.LogoutSuccess)).toHaveLength(1);
    expect((await auditOf(BackOfficeEvents.LogoutSuccess, user.id)).map((entry) => entry.details)).toEqual([{ signOutRedirectUrl: null }]);

    HangingHostListener.hanging = false;
    HangingHostListener.release(); // the listener now sets its URL, too late
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(logger.lines.filter((line) => /signOutRedirectUrl set on backoffice\.user\.logout\.success came after .* ignored/.test(line)), 'a late URL is logged once, as ignored').toHaveLength(1);
    expect(logger.lines.join('\n'), 'a late URL is no listener failure').not.toMatch(/A listener of backoffice\.user\.logout\.success failed/);
    expect((await second.post('/auth/logout')).body).toEqual({ signOutRedirectUrl: null });
    expect((await auditOf(BackOfficeEvents.LogoutSuccess, user.id)).map((entry) => entry.details)).toEqual([{ signOutRedirectUrl: null }, { signOutRedirectUrl: null }]);
  });

  it('a host onAny listener (e.g. a SIEM forwarder) that never settles has the same time limit: POST /auth/login answers, the audit row is written in full', async () => {
    const user = await newUser();
    const emitter = ctx.app.get(EventEmitter2);
    const seen: string[] = [];
    const forwarder = async (event: string | string[]) => {
      seen.push(String(event));
      await new Promise<void>(() => undefined); // a SIEM endpoint that never answers
    };
    emitter.onAny(forwarder);
    const timeoutsBefore = timedOutLines(BackOfficeEvents.LoginSuccess).length;
    try {
      const http = new HttpClient(ctx.url);
      const login = await within(http.login(user.email, password), 5000);
      expect(login, 'POST /auth/login is still pending after 5 s').not.toBe('still pending');
      if (login === 'still pending') return;
      expect(login.status, login.text).toBe(200);
      expect(seen).toContain(BackOfficeEvents.LoginSuccess);
      expect((await http.get('/auth/me')).status).toBe(200);
      expect(timedOutLines(BackOfficeEvents.LoginSuccess)).toHaveLength(timeoutsBefore + 1);
      expect(await auditOf(BackOfficeEvents.LoginSuccess, user.id)).toHaveLength(1);
      const logout = await within(http.post('/auth/logout'), 5000);
      expect(logout, 'POST /auth/logout is still pending after 5 s').not.toBe('still pending');
      expect(await auditOf(BackOfficeEvents.LogoutSuccess, user.id)).toHaveLength(1);
    } finally {
      emitter.offAny(forwarder);
    }
  });
});
