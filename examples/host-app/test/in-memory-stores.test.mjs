// A host app's own test with the module's in-memory stores: no database, no TypeOrmModule. It boots the host's
// controllers and custom user manager with `stores: InMemoryBackOfficeStores.create()` and drives them over HTTP.
// Run after `npm run build`: `npm test` (node:test, no other test runner).
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { BACKOFFICE_USER_MANAGER, BackOfficeIdentityModule } from 'backoffice-identity';
import { InMemoryBackOfficeStores } from 'backoffice-identity/testing';
import { CustomBackOfficeUserManager } from '../dist/custom-user-manager.js';
import { DashboardController } from '../dist/dashboard.controller.js';
import { ExternalMailProvider } from '../dist/external-mail.provider.js';
import { HostConfig } from '../dist/host-config.js';

const PASSWORD = 'correct horse battery staple';

/** The host's test module: its own controller and manager, the module on in-memory stores. */
class InMemoryHostTestModule {}
Module({
  imports: [
    EventEmitterModule.forRoot(),
    BackOfficeIdentityModule.forRoot({
      stores: InMemoryBackOfficeStores.create(),
      userManager: CustomBackOfficeUserManager,
      extraProviders: [{ provide: HostConfig, useValue: { companyName: 'acme' } }],
      password: { hashCost: 4 },
      lockout: { maxFailedAccessAttempts: 3 },
      maintenanceIntervalMinutes: 0,
      email: { pickupDirectory: '.data/test-mail' },
    }),
  ],
  controllers: [DashboardController],
  providers: [ExternalMailProvider],
})(InMemoryHostTestModule);

/** A cookie jar and the XSRF header, as a browser would send them. */
class Client {
  cookies = new Map();
  constructor(url) {
    this.url = url;
  }
  async request(method, path, body) {
    const headers = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const xsrf = [...this.cookies].find(([k]) => /xsrf/i.test(k));
    if (xsrf) headers['x-xsrf-token'] = decodeURIComponent(xsrf[1]);
    const response = await fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const [name, ...rest] = pair.split('=');
      this.cookies.set(name.trim(), rest.join('='));
    }
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }
}

test('the host app runs on the in-memory stores: sign-in, protected route, lockout, logout (no database)', async () => {
  assert.equal(process.env.DATABASE_URL, undefined, 'this test must not see a database');
  const app = await NestFactory.create(InMemoryHostTestModule, { logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  try {
    const url = await app.getUrl();
    const users = app.get(BACKOFFICE_USER_MANAGER);
    assert.ok(users instanceof CustomBackOfficeUserManager);
    const created = await users.createUser({ email: 'admin@host.example', name: 'Ädmin', password: PASSWORD, groups: ['admin'] });
    assert.equal(created.succeeded, true);
    const weak = await users.createUser({ email: 'weak@host.example', name: 'Weak', password: 'acme is the best company' });
    assert.equal(weak.succeeded, false, "the host's own password rule applies");

    const browser = new Client(url);
    assert.equal((await browser.request('GET', '/dashboard')).status, 401);
    const login = await browser.request('POST', '/backoffice/auth/login', { username: 'admin@host.example', password: PASSWORD });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const dashboard = await browser.request('GET', '/dashboard');
    assert.equal(dashboard.status, 200);
    assert.equal(dashboard.body.email, 'admin@host.example');
    assert.deepEqual(dashboard.body.groups, ['admin']);

    const sessions = await browser.request('GET', '/backoffice/auth/sessions');
    assert.equal(sessions.status, 200);
    assert.equal(sessions.body.filter((s) => s.current).length, 1);

    const attacker = new Client(url);
    const attempts = await Promise.all(
      Array.from({ length: 6 }, () => attacker.request('POST', '/backoffice/auth/login', { username: 'admin@host.example', password: 'wrong password' })),
    );
    assert.ok(attempts.every((a) => a.status === 401 || a.status === 423), attempts.map((a) => a.status).join(','));
    assert.ok((await users.findByEmail('admin@host.example')).lockoutEnd !== null, 'parallel failures lock the account');
    assert.equal((await browser.request('GET', '/dashboard')).status, 200, 'a lockout blocks new sign-ins only');

    assert.equal((await browser.request('POST', '/backoffice/auth/logout')).status, 200);
    assert.equal((await browser.request('GET', '/dashboard')).status, 401);
  } finally {
    await app.close();
  }
});
