import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';
import pg from 'pg';

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** Suites that drive the module through a listening Nest app: they run on both HTTP platforms. */
const HTTP_SUITES = [
  'access-denied-audit', 'http-parity', 'email-content-injection', 'emailed-link-attacks', 'link-issuance-email-change-race', 'set-groups-race',
  'manage-target-race', 'admin-surface-attacks', 'email-change-no-enumeration', 'email-change-voids-tokens', 'invite-two-factor-enforcement',
  'password-change-voids-email-change', 'session-revocation-voids-email-change', 'email-change-stamp-bound', 'user-import-update',
  'api-token-revocation', 'api-user-password-lockout', 'locked-account-password-checks', 'kept-session-stamp-change', 'disable-until-lift',
  'disable-lift-race', 'disable-until-unparsable', 'admin-group-refusals-audited', 'import-last-admin-api-users',
  'forgot-password-after-forced-reset', 'set-groups-step-up', 'enable-step-up', 'external-login-attacks', 'external-login-callback-deadline',
  'external-login-groups', 'last-admin-race', 'ldap-offboarding-reset', 'forgot-password-disable-race', 'step-up-token-rotation',
  'link-issuance-disable-race', 'kept-session-concurrent-changes', 'concurrent-stamp-changes', 'admin-and-audit', 'api-users', 'audit-pagination',
  'auth-bad-input', 'auth-http', 'demo-app', 'external-logins', 'hardening', 'global-prefix', 'http-platform', 'invites-and-reset',
  'email-delivery-failures', 'logout-and-host-guard', 'maintenance', 'module-scope', 'openapi', 'passkey-pages', 'passkeys', 'passkeys-review',
  'rate-limits-and-instances', 'rate-limit-attacks', 'round-trips', 'secrets-in-logs', 'two-factor', 'two-factor-lockout-race', 'ui-pages',
  'unstorable-text', 'user-import', 'users-manage-limits', 'unreadable-bodies', 'fuzz', 'hanging-listeners', 'user-lifecycle', 'two-factor-attacks',
  'swap-reach', 'session-cookie-attacks', 'recovery-codes', 'suppressed-listener-errors', 'ipv6-prefix-rotation', 'list-paging',
  'api-token-rotation-race', 'api-user-attacks', 'email-change-password-change-race', 'email-change-confirm-password-race',
  'invite-resend-accept-race', 'assign-groups-race', 'session-surface-attacks', 'group-lock-order-race', 'password-check-rate-limits',
  'import-invite-race', 'ldap-retired-password-passkey', 'name-checked-groups', 'delete-user-twice-race', 'delete-user-without-group-store-race',
  'external-login-auto-redirect', 'password-reset-forced-unmigrated', 'api-user-username', 'directory-managed-email-move', 'challenge-limits',
  'unlock-step-up', 'profile-edit-limits', 'two-factor-setup-race', 'last-accepted-link-live', 'external-login-provider-names',
  'two-factor-reset-lock-order-race'
].map((name) => `test/integration/${name}.spec.ts`);

/** Which PostgreSQL the integration suites run against, besides PGlite. */
async function realPostgresUrl(): Promise<string | undefined> {
  const explicit = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  const url = explicit ?? DEFAULT_PG_URL;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return url;
  } catch (error) {
    if (explicit) {
      throw new Error(`PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} is unreachable: ${(error as Error).message}`);
    }
    console.warn(`\n!! PostgreSQL is not reachable at ${DEFAULT_PG_URL}: integration suites run on PGlite only.\n`);
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export default defineConfig(async () => {
  const pgUrl = await realPostgresUrl();
  const plugins = [swc.vite({ module: { type: 'es6' } })];
  const integration = (name: string, env: Record<string, string>, include = ['test/integration/**/*.spec.ts']) => ({
    plugins,
    test: {
      name,
      globals: true,
      include,
      env,
      sequence: { groupOrder: 0 },
      testTimeout: 60_000,
      hookTimeout: 60_000,
    },
  });
  const oneFileAtATime = (name: string, include: string, groupOrder: number, hookTimeout: number) => ({
    plugins,
    test: {
      name,
      globals: true,
      include: [include],
      env: pgUrl ? { TEST_DB_KIND: 'postgres', TEST_PG_URL: pgUrl } : { TEST_DB_KIND: 'pglite' },
      fileParallelism: false,
      sequence: { groupOrder },
      testTimeout: 120_000,
      hookTimeout,
    },
  });
  return {
    test: {
      projects: [
        { plugins, test: { name: 'unit', globals: true, include: ['test/unit/**/*.spec.ts'], testTimeout: 30_000, sequence: { groupOrder: 0 } } },
        // The HTTP platform matrix: every suite on Express (PostgreSQL and PGlite), and the suites that drive
        // the module over HTTP once more on Fastify (PostgreSQL; PGlite when PostgreSQL is not reachable).
        ...(pgUrl ? [integration('postgres', { TEST_DB_KIND: 'postgres', TEST_PG_URL: pgUrl, TEST_HTTP_PLATFORM: 'express' })] : []),
        integration('pglite', { TEST_DB_KIND: 'pglite', TEST_HTTP_PLATFORM: 'express' }),
        integration(
          'fastify',
          pgUrl ? { TEST_DB_KIND: 'postgres', TEST_PG_URL: pgUrl, TEST_HTTP_PLATFORM: 'fastify' } : { TEST_DB_KIND: 'pglite', TEST_HTTP_PLATFORM: 'fastify' },
          HTTP_SUITES,
        ),
        // Real browser (Debian chromium via playwright-core): after the other suites, one file at a time.
        oneFileAtATime('browser', 'test/browser/**/*.spec.ts', 1, 120_000),
        // Timing comparisons run last, one file at a time, so parallel suites do not add noise.
        oneFileAtATime('timing', 'test/timing/**/*.spec.ts', 2, 60_000),
      ],
    },
  };
});
