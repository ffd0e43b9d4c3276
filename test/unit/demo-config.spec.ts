import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';
import { FallbackPasswordChecker, LdapPasswordChecker } from '../../src/backoffice-identity/index.js';
import { DemoConfigError, describeDatabase, identityOptionsFrom, isPlaceholderSecret, loadDemoConfig, passwordCheckerFrom } from '../../src/demo/demo.config.js';
import { HealthController } from '../../src/demo/health.controller.js';
import type { DataSource } from 'typeorm';

const problemsOf = (env: NodeJS.ProcessEnv): string[] => {
  try {
    loadDemoConfig(env);
  } catch (error) {
    if (error instanceof DemoConfigError) return error.problems;
    throw error;
  }
  return [];
};

const PRODUCTION = { NODE_ENV: 'production', PUBLIC_URL: 'https://backoffice.example.com', BACKOFFICE_ENCRYPTION_KEY: 'k8Yq3vPZ2mW9xT4rB7nL1cD6fH0jS5aE' };

describe('demo config (env of contract section 5)', () => {
  it('has the documented defaults, with empty values counting as unset', () => {
    const config = loadDemoConfig({ PORT: '', DATABASE_URL: '', BACKOFFICE_RATE_LIMITS: '' });
    expect(config).toEqual({
      port: 3000,
      httpPlatform: 'express',
      production: false,
      dataDir: '.data',
      database: { kind: 'embedded', dataDir: '.data/pglite' },
      publicUrl: 'http://localhost:3000',
      smtpUrl: undefined,
      mailPickupDir: '.data/mail',
      redisUrl: undefined,
      adminEmail: 'admin@example.com',
      adminPassword: undefined,
      bcryptCost: 12,
      lockoutMaxAttempts: 5,
      rateLimitsEnabled: true,
      secureCookies: false,
      encryptionKey: undefined,
      ldap: undefined,
    });
  });

  it('LDAP_*: the LDAP password checker of section 9, with its defaults; wrong values are named', () => {
    const plainLdap = {
      LDAP_URL: 'ldap://127.0.0.1:3890/',
      LDAP_BIND_DN: 'cn=reader,dc=example,dc=org',
      LDAP_BIND_PASSWORD: 'reader secret',
      LDAP_SEARCH_BASE: 'ou=people,dc=example,dc=org',
    };
    const config = loadDemoConfig(plainLdap);
    expect(config.ldap).toEqual({
      url: 'ldap://127.0.0.1:3890',
      bindDn: 'cn=reader,dc=example,dc=org',
      bindPassword: 'reader secret',
      searchBase: 'ou=people,dc=example,dc=org',
      searchFilter: '(mail={username})',
      startTls: false,
      allowInsecureConnection: false,
      keepLocalPasswords: false,
      createUsers: false,
      defaultGroups: ['editor'],
      onDirectoryDown: 'deny',
    });
    // Cleartext ldap:// without StartTLS fails start-up unless LDAP_ALLOW_INSECURE opts in (ASVS 4.0 9.2.2).
    expect(() => passwordCheckerFrom(config)).toThrow(/ldap\.url.*allowInsecureConnection/s);
    expect(passwordCheckerFrom(loadDemoConfig({ ...plainLdap, LDAP_START_TLS: 'on' }))).toBeInstanceOf(LdapPasswordChecker);
    expect(passwordCheckerFrom(loadDemoConfig({ ...plainLdap, LDAP_ALLOW_INSECURE: 'on' }))).toBeInstanceOf(LdapPasswordChecker);
    expect(() => loadDemoConfig({ ...plainLdap, LDAP_ALLOW_INSECURE: 'maybe' })).toThrow(/LDAP_ALLOW_INSECURE/);
    expect(passwordCheckerFrom(loadDemoConfig({}))).toBeInstanceOf(FallbackPasswordChecker);
    const custom = loadDemoConfig({ LDAP_URL: 'ldaps://ldap.example.com', LDAP_SEARCH_BASE: 'dc=x', LDAP_CREATE_USERS: 'on', LDAP_DEFAULT_GROUPS: 'writer, translator', LDAP_SEARCH_FILTER: '(uid={username})' });
    expect(custom.ldap).toMatchObject({ createUsers: true, defaultGroups: ['writer', 'translator'], searchFilter: '(uid={username})' });
    expect(() => loadDemoConfig({ LDAP_URL: 'http://x', LDAP_SEARCH_BASE: 'dc=x' })).toThrow(/LDAP_URL/);
    expect(() => loadDemoConfig({ LDAP_URL: 'ldap://x' })).toThrow(/LDAP_SEARCH_BASE/);
    expect(() => loadDemoConfig({ LDAP_URL: 'ldap://x', LDAP_SEARCH_BASE: 'dc=x', LDAP_BIND_DN: 'cn=a' })).toThrow(/LDAP_BIND_PASSWORD/);
    expect(() => loadDemoConfig({ LDAP_URL: 'ldap://x', LDAP_SEARCH_BASE: 'dc=x', LDAP_SEARCH_FILTER: 'mail=x' })).toThrow(/LDAP_SEARCH_FILTER/);
    expect(() => loadDemoConfig({ LDAP_URL: 'ldap://x', LDAP_SEARCH_BASE: 'dc=x', LDAP_CREATE_USERS: 'maybe' })).toThrow(/LDAP_CREATE_USERS/);
    expect(() => loadDemoConfig({ LDAP_URL: 'ldap://x', LDAP_SEARCH_BASE: 'dc=x', LDAP_ON_DIRECTORY_DOWN: 'x' })).toThrow(/LDAP_ON_DIRECTORY_DOWN/);
    try {
      loadDemoConfig({ LDAP_URL: 'ldap://x', LDAP_SEARCH_BASE: 'dc=x', LDAP_BIND_PASSWORD: 'hunter2 secret' });
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2');
    }
  });

  it('HTTP_PLATFORM: express (default) or fastify, anything else names the variable', () => {
    expect(loadDemoConfig({ HTTP_PLATFORM: 'Fastify' }).httpPlatform).toBe('fastify');
    expect(() => loadDemoConfig({ HTTP_PLATFORM: 'koa' })).toThrow(/HTTP_PLATFORM must be "express" or "fastify" \(got "koa"\)/);
  });

  it('reads every variable, and the mapped options pass the module\'s own validation', () => {
    const config = loadDemoConfig({
      PORT: '8080',
      DATABASE_URL: 'postgres://app:s3cret@db:5432/backoffice',
      SMTP_URL: 'smtp://mailpit:1025',
      MAIL_PICKUP_DIR: '/var/mail/bo',
      PUBLIC_URL: 'https://bo.example.com/',
      REDIS_URL: 'redis://redis:6379',
      BACKOFFICE_ADMIN_EMAIL: 'root@example.com',
      BACKOFFICE_ADMIN_PASSWORD: ' spaces are kept ',
      BACKOFFICE_BCRYPT_COST: '10',
      BACKOFFICE_LOCKOUT_MAX_ATTEMPTS: '3',
      BACKOFFICE_RATE_LIMITS: 'off',
    });
    expect(config).toMatchObject({
      port: 8080,
      database: { kind: 'postgres', url: 'postgres://app:s3cret@db:5432/backoffice' },
      publicUrl: 'https://bo.example.com',
      adminPassword: ' spaces are kept ',
      rateLimitsEnabled: false,
    });
    expect(describeDatabase(config.database)).toBe('PostgreSQL postgres://app:***@db:5432/backoffice');
    const resolved = resolveBackOfficeIdentityOptions(identityOptionsFrom(config));
    expect(resolved).toMatchObject({
      publicUrl: 'https://bo.example.com',
      password: { hashCost: 10 },
      lockout: { maxFailedAccessAttempts: 3 },
      session: { secureCookies: true },
      email: { smtpUrl: 'smtp://mailpit:1025', pickupDirectory: '/var/mail/bo' },
      rateLimits: { enabled: false, redisUrl: 'redis://redis:6379' },
      passkeys: { rpId: 'bo.example.com', origins: ['https://bo.example.com'] },
    });
  });

  it('BACKOFFICE_SECURE_COOKIES (OWASP ASVS 4.0 3.4.1): on by default with an https PUBLIC_URL, also outside production; off with one names the variable', () => {
    expect(loadDemoConfig({ PUBLIC_URL: 'https://bo.example.com' }).secureCookies).toBe(true);
    expect(loadDemoConfig({}).secureCookies).toBe(false);
    expect(loadDemoConfig({ PUBLIC_URL: 'http://localhost:3000', BACKOFFICE_SECURE_COOKIES: 'on' }).secureCookies).toBe(true);
    // Reported once, by the module's own rule, under the variable the operator set.
    expect(problemsOf({ PUBLIC_URL: 'https://bo.example.com', BACKOFFICE_SECURE_COOKIES: 'off' })).toEqual([
      expect.stringMatching(/^BACKOFFICE_SECURE_COOKIES: .*"session.secureCookies" must stay true while publicUrl is https/),
    ]);
    // The scheme in any case: HTTPS:// turns Secure cookies on by default too.
    expect(loadDemoConfig({ PUBLIC_URL: 'HTTPS://bo.example.com' }).secureCookies).toBe(true);
  });

  it('takes the passkey rp id and origin from PUBLIC_URL; off for IP addresses and plain http off localhost', () => {
    const passkeysOf = (PUBLIC_URL?: string) => resolveBackOfficeIdentityOptions(identityOptionsFrom(loadDemoConfig({ PUBLIC_URL }))).passkeys;
    expect(passkeysOf()).toMatchObject({ rpId: 'localhost', origins: ['http://localhost:3000'] });
    expect(passkeysOf('http://localhost:8080/')).toMatchObject({ rpId: 'localhost', origins: ['http://localhost:8080'] });
    expect(passkeysOf('https://admin.example.com/backoffice')).toMatchObject({ rpId: 'admin.example.com', origins: ['https://admin.example.com'] });
    expect(passkeysOf('http://127.0.0.1:3000')).toBeNull();
    expect(passkeysOf('http://[::1]:3000')).toBeNull();
    expect(passkeysOf('http://bo.example.com')).toBeNull();
  });

  it('DATABASE_URL=memory:// is a throwaway PGlite; BACKOFFICE_DATA_DIR moves the embedded one and the mail folder', () => {
    expect(loadDemoConfig({ DATABASE_URL: 'memory://' }).database).toEqual({ kind: 'memory' });
    expect(loadDemoConfig({ BACKOFFICE_DATA_DIR: '/srv/bo' })).toMatchObject({
      database: { kind: 'embedded', dataDir: '/srv/bo/pglite' },
      mailPickupDir: '/srv/bo/mail',
    });
  });

  it('lists every wrong variable by name, masking passwords in URLs', () => {
    const problems = problemsOf({
      PORT: '70000',
      DATABASE_URL: 'mysql://root:hunter2@db/x',
      BACKOFFICE_BCRYPT_COST: 'abc',
      BACKOFFICE_LOCKOUT_MAX_ATTEMPTS: '0',
      BACKOFFICE_RATE_LIMITS: 'maybe',
      SMTP_URL: 'http://mail',
      NODE_ENV: 'prod',
    });
    expect(problems).toHaveLength(7);
    for (const name of ['PORT', 'DATABASE_URL', 'BACKOFFICE_BCRYPT_COST', 'BACKOFFICE_LOCKOUT_MAX_ATTEMPTS', 'BACKOFFICE_RATE_LIMITS', 'SMTP_URL', 'NODE_ENV']) {
      expect(problems.some((p) => p.startsWith(`${name} `))).toBe(true);
    }
    expect(problems.join('\n')).not.toContain('hunter2');
    expect(problemsOf({ BACKOFFICE_BCRYPT_COST: '3' })).toEqual(['BACKOFFICE_BCRYPT_COST must be an integer from 4 to 20 (got "3")']);
  });

  describe('NODE_ENV=production', () => {
    it('starts with https, secure cookies and a real password', () => {
      const config = loadDemoConfig({ ...PRODUCTION, BACKOFFICE_ADMIN_PASSWORD: 'a long and unguessable passphrase' });
      expect(config).toMatchObject({ production: true, secureCookies: true });
      expect(loadDemoConfig(PRODUCTION).adminPassword).toBeUndefined();
    });

    it.each(['change-me', 'CHANGEME', 'changeme123', '<admin password>', 'replace-me-please', 'password', 'xxxxxxxx'])(
      'refuses the placeholder admin password %j',
      (password) => {
        expect(isPlaceholderSecret(password)).toBe(true);
        expect(problemsOf({ ...PRODUCTION, BACKOFFICE_ADMIN_PASSWORD: password })).toEqual([
          expect.stringMatching(/^BACKOFFICE_ADMIN_PASSWORD is a placeholder/),
        ]);
      },
    );

    it('accepts a placeholder-looking password outside production (the password policy still applies)', () => {
      expect(loadDemoConfig({ BACKOFFICE_ADMIN_PASSWORD: 'change-me' }).adminPassword).toBe('change-me');
    });

    it('refuses insecure cookies and a non-https PUBLIC_URL, also when PUBLIC_URL is unset', () => {
      expect(problemsOf({ ...PRODUCTION, BACKOFFICE_SECURE_COOKIES: 'off' })).toEqual([expect.stringMatching(/^BACKOFFICE_SECURE_COOKIES is off/)]);
      expect(problemsOf({ ...PRODUCTION, PUBLIC_URL: 'http://bo.example.com' })).toEqual([expect.stringMatching(/^PUBLIC_URL must be an https:\/\/ URL/)]);
      expect(problemsOf({ ...PRODUCTION, PUBLIC_URL: undefined })).toEqual([expect.stringMatching(/^PUBLIC_URL must be an https:\/\/ URL/)]);
      expect(problemsOf({ ...PRODUCTION, BACKOFFICE_ENCRYPTION_KEY: undefined })).toEqual([expect.stringMatching(/^BACKOFFICE_ENCRYPTION_KEY is not set/)]);
    });

    it('refuses a placeholder or short BACKOFFICE_ENCRYPTION_KEY', () => {
      expect(problemsOf({ ...PRODUCTION, BACKOFFICE_ENCRYPTION_KEY: 'change-me-change-me-change-me-change-me' })).toEqual([
        expect.stringMatching(/^BACKOFFICE_ENCRYPTION_KEY is a placeholder/),
      ]);
      expect(problemsOf({ BACKOFFICE_ENCRYPTION_KEY: 'short' })).toEqual([expect.stringMatching(/^BACKOFFICE_ENCRYPTION_KEY must be at least 32/)]);
    });
  });
});

describe('HealthController', () => {
  const check = async (query: () => Promise<unknown>) => {
    let status = 0;
    const body = await new HealthController({ query } as unknown as DataSource).check({ status: (code: number) => (status = code) });
    return { status, body };
  };

  it('200 { status: ok, database: up } after SELECT 1', async () => {
    const query = vi.fn(async () => [{ '?column?': 1 }]);
    expect(await check(query)).toEqual({ status: 200, body: { status: 'ok', database: 'up' } });
    expect(query).toHaveBeenCalledWith('SELECT 1');
  });

  it('503 { database: down } when the query fails', async () => {
    expect(await check(async () => Promise.reject(new Error('connection terminated')))).toEqual({ status: 503, body: { status: 'error', database: 'down' } });
  });

  it('503 when the database does not answer within 3 s', async () => {
    vi.useFakeTimers();
    try {
      const pending = check(() => new Promise(() => undefined));
      await vi.advanceTimersByTimeAsync(3000);
      expect(await pending).toEqual({ status: 503, body: { status: 'error', database: 'down' } });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('demo OIDC_* (contract section 6)', () => {
  it('OIDC_ISSUER + client make the provider `oidc` with the documented defaults', () => {
    const config = loadDemoConfig({ OIDC_ISSUER: 'https://login.example.com/realms/acme', OIDC_CLIENT_ID: 'backoffice', OIDC_CLIENT_SECRET: 's3cret-value' });
    expect(config.oidc).toEqual({
      issuer: 'https://login.example.com/realms/acme',
      clientId: 'backoffice',
      clientSecret: 's3cret-value',
      displayName: 'Single sign-on',
      autoLink: true,
      defaultGroups: ['editor'],
      groupsClaim: undefined,
      groupMapping: {},
      denyLocalLogin: false,
      autoRedirect: false,
    });
    const [provider] = identityOptionsFrom(config).externalLogins!;
    expect(provider).toMatchObject({ name: 'oidc', issuer: config.oidc!.issuer, autoLink: { enabled: true, defaultGroups: ['editor'] }, denyLocalLogin: false });
  });

  it('reads every OIDC_* variable', () => {
    const config = loadDemoConfig({
      OIDC_ISSUER: 'http://localhost:8080/realms/backoffice',
      OIDC_CLIENT_ID: 'bo',
      OIDC_DISPLAY_NAME: 'Keycloak',
      OIDC_AUTO_LINK: 'off',
      OIDC_DEFAULT_GROUPS: 'writer, translator',
      OIDC_GROUPS_CLAIM: 'groups',
      OIDC_GROUP_MAPPING: 'cms-editors=editor, staff=writer,staff=translator',
      OIDC_DENY_LOCAL_LOGIN: 'on',
      OIDC_AUTO_REDIRECT: 'on',
    });
    expect(config.oidc).toMatchObject({ displayName: 'Keycloak', autoLink: false, defaultGroups: ['writer', 'translator'], groupsClaim: 'groups', denyLocalLogin: true, autoRedirect: true });
    expect(identityOptionsFrom(config).externalLogins![0].scopes).toContain('groups');
    expect(config.oidc!.groupMapping).toEqual({ 'cms-editors': ['editor'], staff: ['writer', 'translator'] });
    expect(identityOptionsFrom(config).externalLogins![0].autoLink!.groupMapping).toEqual({ 'cms-editors': ['editor'], staff: ['writer', 'translator'] });
  });

  it('OWASP ASVS 4.0 4.1.3: refuses a malformed OIDC_GROUP_MAPPING, naming the variable', () => {
    const env = { OIDC_ISSUER: 'https://login.example.com', OIDC_CLIENT_ID: 'x', OIDC_GROUPS_CLAIM: 'groups' };
    for (const value of ['editor', 'editor=', '=editor', 'a=b=c', 'editor=not an alias', 'editor=editor,,writer=writer']) {
      expect(() => loadDemoConfig({ ...env, OIDC_GROUP_MAPPING: value }), value).toThrow(/OIDC_GROUP_MAPPING must be comma-separated providerGroup=alias pairs/);
    }
  });

  it('refuses OIDC_GROUP_MAPPING without OIDC_GROUPS_CLAIM (the mapping would do nothing), naming both variables', () => {
    const env = { OIDC_ISSUER: 'https://login.example.com', OIDC_CLIENT_ID: 'x', OIDC_GROUP_MAPPING: 'editor=editor' };
    expect(() => loadDemoConfig(env)).toThrow(/OIDC_GROUP_MAPPING is set without OIDC_GROUPS_CLAIM .*e\.g\. OIDC_GROUPS_CLAIM=groups/);
    expect(() => loadDemoConfig({ ...env, OIDC_GROUPS_CLAIM: '' })).toThrow(/OIDC_GROUP_MAPPING is set without OIDC_GROUPS_CLAIM/);
    expect(loadDemoConfig({ ...env, OIDC_GROUPS_CLAIM: 'groups' }).oidc!.groupMapping).toEqual({ editor: ['editor'] });
  });

  it('the docker-compose default (editor=editor,writer=writer) resolves as module options', () => {
    const config = loadDemoConfig({ OIDC_ISSUER: 'http://localhost:8080/realms/backoffice', OIDC_CLIENT_ID: 'backoffice', OIDC_GROUPS_CLAIM: 'groups', OIDC_GROUP_MAPPING: 'editor=editor,writer=writer' });
    expect(resolveBackOfficeIdentityOptions(identityOptionsFrom(config)).externalLogins[0].autoLink.groupMapping).toEqual({ editor: ['editor'], writer: ['writer'] });
  });

  it('no OIDC_ISSUER: no provider', () => {
    expect(loadDemoConfig({}).oidc).toBeUndefined();
    expect(identityOptionsFrom(loadDemoConfig({})).externalLogins).toEqual([]);
  });

  it('refuses a bad issuer, a missing client id and a bad on/off, naming each variable', () => {
    expect(() => loadDemoConfig({ OIDC_ISSUER: 'login.example.com' })).toThrow(/OIDC_ISSUER must be a URL/);
    expect(() => loadDemoConfig({ OIDC_ISSUER: 'https://login.example.com' })).toThrow(/OIDC_CLIENT_ID must be set/);
    expect(() => loadDemoConfig({ OIDC_ISSUER: 'https://login.example.com', OIDC_CLIENT_ID: 'x', OIDC_AUTO_LINK: 'maybe' })).toThrow(/OIDC_AUTO_LINK must be "on" or "off"/);
  });

  describe('a value the module refuses stops the demo with one line naming the variable, not the module option', () => {
    const OIDC = { OIDC_ISSUER: 'https://login.example.com', OIDC_CLIENT_ID: 'backoffice' };
    it.each([
      ['PUBLIC_URL with a query', { PUBLIC_URL: 'https://bo.example.com/?tenant=a' }, 'PUBLIC_URL', 'publicUrl'],
      ['OIDC_ISSUER over plain http off loopback', { ...OIDC, OIDC_ISSUER: 'http://login.example.com' }, 'OIDC_ISSUER', 'externalLogins[0].issuer'],
      ['OIDC_DISPLAY_NAME too long', { ...OIDC, OIDC_DISPLAY_NAME: 'x'.repeat(65) }, 'OIDC_DISPLAY_NAME', 'externalLogins[0].displayName'],
      ['OIDC_CLIENT_ID with a space', { ...OIDC, OIDC_CLIENT_ID: 'back office' }, 'OIDC_CLIENT_ID', 'externalLogins[0].clientId'],
      ['OIDC_GROUPS_CLAIM with a space', { ...OIDC, OIDC_GROUPS_CLAIM: 'my groups' }, 'OIDC_GROUPS_CLAIM', 'externalLogins[0]'],
    ])('%s', (_title, env, variable, option) => {
      const problems = problemsOf(env);
      expect(problems).toHaveLength(1);
      expect(problems[0]!.startsWith(`${variable}: `)).toBe(true);
      expect(problems[0]).toContain(`option "${option}`);
      expect(problems[0]).not.toContain('\n');
    });

    it('never prints a secret the module refuses', () => {
      const problems = problemsOf({ ...OIDC, OIDC_CLIENT_SECRET: 'hunter2\nsecret' });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^OIDC_CLIENT_SECRET: /);
      expect(problems[0]).not.toContain('hunter2');
    });
  });
});
