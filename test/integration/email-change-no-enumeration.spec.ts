import { BackOfficeBackgroundTasks, BackOfficeEvents } from '../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { HttpClient } from '../support/http-client.js';
import { createIdentityApp, TEST_PASSWORD, userFactory, type IdentityApp } from '../support/identity-app.js';
import { NotificationRecorder } from '../support/notification-recorder.js';

/** An SMTP-like sender: each message takes ~150 ms; `failing` makes it reject like an unreachable relay. */
const sender = {
  failing: false,
  sent: [] as Array<{ to: string; type: string }>,
  async send(message: { to: string }, type: string) {
    await new Promise((r) => setTimeout(r, 150));
    if (sender.failing) throw new Error('SMTP relay unreachable');
    sender.sent.push({ to: message.to, type });
    return 'message-id';
  },
};

/**
 * `POST /auth/me/email` answers 202 `{ status: 'pending' }` whether or not another account uses the address
 * (README "User lifecycle"): the lookup, the link and the two emails happen after the response, as forgot-password's
 * do, so neither the status nor the response time tells a taken address from a free one, even with a slow or
 * broken mail relay. OWASP ASVS 5.0 6.3.8 (no account deduced from status codes or response times; ASVS 4.0
 * 2.5 / 3.x as the forgot-password suite cites).
 */
describe('An email change request does not reveal whether the address is taken', () => {
  let db: TestDatabase;
  let ctx: IdentityApp;
  let me: HttpClient;
  let events: NotificationRecorder;
  let selfId: string;
  const make = userFactory(() => ctx, 'emenum');
  const drain = () => ctx.app.get(BackOfficeBackgroundTasks).drain();

  beforeAll(async () => {
    db = await createTestDatabase();
    ctx = await createIdentityApp(db, { identity: { rateLimits: { enabled: false }, emailSender: { useValue: sender } } });
    events = NotificationRecorder.attach(ctx.app);
    await make({ email: 'existing-victim@example.com' });
    const self = await make();
    selfId = self.id;
    me = new HttpClient(ctx.url);
    expect((await me.login(self.email, TEST_PASSWORD)).status).toBe(200);
  });
  afterAll(async () => {
    await ctx?.close();
    await db?.drop();
  });

  const timed = async (newEmail: string) => {
    const start = performance.now();
    const res = await me.post('/auth/me/email', { newEmail });
    return { status: res.status, body: res.body, ms: Math.round(performance.now() - start) };
  };

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

  it('a taken and a free address get the same 202 in about the same time (neither waits for the ~300 ms of email)', async () => {
    // Medians of alternating samples (each after the previous one's background work), so one slow request on a busy
    // machine does not decide; awaiting the two emails used to add >= 300 ms to every free-address answer.
    const taken: Array<Awaited<ReturnType<typeof timed>>> = [];
    const free: Array<Awaited<ReturnType<typeof timed>>> = [];
    for (let i = 0; i < 5; i++) {
      await drain();
      taken.push(await timed('existing-victim@example.com'));
      await drain();
      free.push(await timed(`nobody-has-this-${i}@example.com`));
    }
    await drain();
    for (const res of [...taken, ...free]) {
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ status: 'pending' });
    }
    const [takenMs, freeMs] = [median(taken.map((r) => r.ms)), median(free.map((r) => r.ms))];
    expect(Math.abs(freeMs - takenMs), `medians: taken ${takenMs} ms, free ${freeMs} ms`).toBeLessThan(100);
    expect(freeMs).toBeLessThan(300);

    // The work still happens after the answer: each free address gets its link, the old one a notice for every
    // request (taken or free); the taken one nothing.
    expect(sender.sent.filter((m) => m.to === 'nobody-has-this-0@example.com').map((m) => m.type)).toEqual(['EmailChangeConfirm']);
    expect(sender.sent.filter((m) => m.type === 'EmailChangeNotice')).toHaveLength(10);
    expect(sender.sent.filter((m) => m.to === 'existing-victim@example.com')).toEqual([]);
    expect(events.named(BackOfficeEvents.EmailChangeRequested, selfId)).toHaveLength(5);
  });

  it('with the mail relay down, a taken and a free address still both get 202; the failure is logged, never answered', async () => {
    sender.failing = true;
    try {
      const taken = await timed('existing-victim@example.com');
      const free = await timed('nobody-has-this-either@example.com');
      expect(taken.status).toBe(202);
      expect(free.status).toBe(202);
      expect(free.body).toEqual(taken.body);
      await drain();
      // Audited like forgot-password: the request is in the audit trail, the delivery failure only in the log.
      expect(events.named(BackOfficeEvents.EmailChangeRequested, selfId)).toHaveLength(6);
    } finally {
      sender.failing = false;
    }
  });

  it('OWASP ASVS 5.0 6.3.8: the requester\'s own (old) mailbox gets the same notice whether the new address is taken or free', async () => {
    await drain();
    const noticesTo = (to: string) => sender.sent.filter((m) => m.type === 'EmailChangeNotice' && m.to === to).length;
    const self = await make();
    const client = new HttpClient(ctx.url);
    expect((await client.login(self.email, TEST_PASSWORD)).status).toBe(200);
    expect((await client.post('/auth/me/email', { newEmail: 'existing-victim@example.com' })).status).toBe(202);
    await drain();
    const afterTaken = noticesTo(self.email);
    expect((await client.post('/auth/me/email', { newEmail: 'nobody-has-this-notice@example.com' })).status).toBe(202);
    await drain();
    const afterFree = noticesTo(self.email) - afterTaken;
    expect({ taken: afterTaken, free: afterFree }).toEqual({ taken: 1, free: 1 });
    expect(sender.sent.filter((m) => m.to === 'existing-victim@example.com')).toEqual([]);
  });

  it('bad input is still refused at once with 400 (checked before the answer)', async () => {
    for (const newEmail of ['not-an-email', '']) expect((await me.post('/auth/me/email', { newEmail })).status).toBe(400);
  });
});
