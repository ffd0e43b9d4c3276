#!/usr/bin/env node
// Mutation check of the security behaviours of issue #14: each mutation below breaks one rule on purpose,
// runs the test that guards it, and expects that test to FAIL; the file is restored afterwards, always.
//
//   node scripts/security-mutations.mjs                # every mutation, on the postgres project
//   node scripts/security-mutations.mjs pglite stamp   # one project, mutations whose name contains "stamp"
//
// Prints one line per mutation (caught / NOT CAUGHT) and exits 1 when a mutation survives.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const SRC = 'src/backoffice-identity';
const HARDENING = 'test/integration/hardening.spec.ts';

/** [name, file, find, replace, test file, test name filter] */
const MUTATIONS = [
  // issue item 9: behaviours that had no test
  ['session stamp check removed', `${SRC}/sessions/backoffice-session.service.ts`, ' || user.securityStamp !== session.securityStamp', '', HARDENING, "security-stamp check: a new stamp"],
  ['setGroups keeps the stamp', `${SRC}/users/backoffice-user-manager.ts`, '    user.groups = aliases;\n    await this.updateSecurityStamp(user);', '    user.groups = aliases;', HARDENING, 'a group change renews'],
  ['keepOnlyThisSession revokes nothing', `${SRC}/two-factor/two-factor.controller.ts`, '    await this.sessions.revokeAll(userId, sessionId);', '', HARDENING, 'enabling and disabling 2FA revoke'],
  ['forgot-password limit x1000', `${SRC}/auth/password-reset.controller.ts`, 'limit: this.options.rateLimits.forgotPasswordPerEmail,', 'limit: this.options.rateLimits.forgotPasswordPerEmail * 1000,', HARDENING, 'forgot-password: at most 5'],
  ['POST /auth/2fa rate limit off', `${SRC}/two-factor/two-factor.controller.ts`, "    await this.rateLimiter.enforce([{ name: 'two-factor-ip'", "    if (Math.random() > 2) await this.rateLimiter.enforce([{ name: 'two-factor-ip'", HARDENING, 'POST /auth/2fa is rate limited'],
  ['durationMinutes 0 = no lock', `${SRC}/users/backoffice-user-manager.ts`, 'return minutes === 0 ? LOCKED_UNTIL_UNLOCKED :', 'return minutes === 0 ? this.now() :', HARDENING, 'durationMinutes 0'],
  ['audit paging ignores skip', `${SRC}/audit/audit.controller.ts`, '.skip(query.skip)', '', HARDENING, 'audit paging'],
  ['admin 2FA reset open to every group', `${SRC}/users/users.controller.ts`, "  @Post(':id/2fa/reset')\n", "  @Post(':id/2fa/reset')\n  @BackOfficeAuthorize()\n", HARDENING, 'admin 2FA reset route: 403'],
  ['admin 2FA reset without the 404', `${SRC}/users/users.controller.ts`, "    const user = await this.findOr404(id);\n    this.throwIfFailed(await this.userManager.resetTwoFactor(user));", "    const user = (await this.userManager.findById(id))!;\n    this.throwIfFailed(await this.userManager.resetTwoFactor(user));", HARDENING, 'admin 2FA reset route: 403'],
  ['XSRF not checked on PUT', `${SRC}/sessions/backoffice-auth.guard.ts`, "const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);", "const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT']);", HARDENING, 'PUT without the XSRF header'],
  ['XSRF cookie not compared', `${SRC}/sessions/session-cookies.ts`, 'return constantTimeEquals(header, expected) && constantTimeEquals(cookie, expected);', 'return constantTimeEquals(header, expected);', HARDENING, 'PUT without the XSRF header'],
  ['last-seen written on every request', `${SRC}/sessions/backoffice-session.service.ts`, '>= this.touchIntervalMs) {', '>= 0) {', HARDENING, 'last-seen writes are throttled'],
  ['consumeToken without used_at IS NULL', `${SRC}/users/stores/typeorm-user-store.ts`, 'AND token_hash = $3 AND used_at IS NULL AND expires_at > $4\n       RETURNING id', 'AND token_hash = $3 AND expires_at > $4\n       RETURNING id', HARDENING, 'a reset token works once'],
  ['isTokenLive without used_at IS NULL', `${SRC}/users/stores/typeorm-user-store.ts`, "AND token_hash = $3 AND used_at IS NULL AND expires_at > $4`,\n      [userId, purpose, tokenHash, now],\n    );\n    return rows.length === 1;", "AND token_hash = $3 AND expires_at > $4`,\n      [userId, purpose, tokenHash, now],\n    );\n    return rows.length === 1;", HARDENING, 'a reset token works once'],
  // issue items 1-8 and 10: each fix undone
  ['1 no depth limit', `${SRC}/http/backoffice-validation.pipe.ts`, "if (metadata.type !== 'custom' && nestedDeeperThan(value, MAX_BODY_DEPTH))", 'if (false)', HARDENING, 'nested 1,500 deep'],
  ['2 last admin counts every approved admin', `${SRC}/users/stores/typeorm-user-store.ts`, '    if (options.now) {', '    if (options.now && false) {', HARDENING, 'only admins who can sign in now count'],
  ['2 import counts every approved admin', `${SRC}/users/stores/typeorm-user-import.ts`, "WHERE g.alias = $1 AND ${canSignInNow('u', '$2')}`", "WHERE g.alias = $1 AND u.is_approved AND $2::timestamptz IS NOT NULL`", HARDENING, 'only admins who can sign in now count'],
  ['3 lockout suspends sessions', `${SRC}/sessions/backoffice-session.service.ts`, 'if (!user || !user.isApproved || user.securityStamp', 'if (!user || !user.isApproved || this.userManager.isLockedOut(user) || user.securityStamp', HARDENING, 'do not keep that admin out'],
  ['4 no step-up on 2FA setup', `${SRC}/two-factor/two-factor.controller.ts`, "  @Post('setup')\n  @HttpCode(200)\n  @BackOfficeAuthorize()\n  @RequiresRecentSignIn()\n", "  @Post('setup')\n  @HttpCode(200)\n  @BackOfficeAuthorize()\n", HARDENING, 'stolen cookie cannot enrol'],
  ['4 reset email silent about 2FA', `${SRC}/email/email-templates.ts`, 'const twoFactor = user.twoFactorEnabled ? this.twoFactorResetNote() :', 'const twoFactor = false ? this.twoFactorResetNote() :', HARDENING, 'password reset email tells'],
  ['5 session list ignores the stamp', `${SRC}/sessions/backoffice-session.service.ts`, '        securityStamp: user.securityStamp,\n', '', HARDENING, 'GET /auth/sessions lists only'],
  ['6 no Cache-Control', `${SRC}/http/security-headers.middleware.ts`, "      response.setHeader('Cache-Control', 'no-store');\n", '', HARDENING, 'Cache-Control: no-store'],
  ['7 malformed JSON as bad_request', `${SRC}/http/backoffice-exception.filter.ts`, '    if (BackOfficeExceptionFilter.isMalformedJson(exception)) {', '    if (false) {', HARDENING, 'malformed_json'],
  ['8 lenient email pattern', `${SRC}/users/user-validators.ts`, '!EMAIL_ADDRESS.test(user.email)', '!/^[^\\s@]{1,64}@[^\\s@.]+(\\.[^\\s@.]+)+$/u.test(user.email)', HARDENING, 'email validator refuses'],
  ['8 reset token survives a disable', `${SRC}/users/backoffice-user-manager.ts`, "for (const purpose of ['password_reset', 'invite'] as const) await this.store.voidTokens(user.id, purpose, this.now());", '', HARDENING, 'issued before a disable'],
  ['8 attempted usernames in clear', `${SRC}/users/backoffice-user-manager.ts`, "return keyedHash(this.options, 'login-attempt', normalizedUsername);", 'return normalizedUsername;', HARDENING, 'attempted usernames are stored'],
  ['8 recovery codes of 50 bits', `${SRC}/two-factor/recovery-codes.ts`, 'const CODE_LENGTH = 16;', 'const CODE_LENGTH = 10;', HARDENING, 'recovery codes carry 80 bits'],
  ['10 X-Powered-By kept', `${SRC}/http/security-headers.middleware.ts`, "      response.removeHeader('X-Powered-By');\n", '', HARDENING, 'Cache-Control: no-store'],
];

const [project = 'postgres', only = ''] = process.argv.slice(2);
let survived = 0;
for (const [name, file, find, replace, testFile, filter] of MUTATIONS) {
  if (only && !name.includes(only)) continue;
  const original = readFileSync(file, 'utf8');
  if (!original.includes(find)) {
    console.log(`SKIPPED      ${name}: pattern not found in ${file} (the code moved: update the script)`);
    survived++;
    continue;
  }
  const restore = () => writeFileSync(file, original);
  process.once('SIGINT', () => {
    restore();
    process.exit(130);
  });
  writeFileSync(file, original.replace(find, replace));
  let caught = false;
  try {
    execFileSync('npx', ['vitest', 'run', '--project', project, testFile, '-t', filter], { stdio: 'pipe', timeout: 300_000 });
  } catch (error) {
    // caught only when a test ran and failed an assertion (not when the mutated file failed to load)
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`.replace(/\x1b\[[0-9;]*m/g, '');
    caught = /Tests\s+\d+ failed/.test(output);
    if (!caught) console.log(output.split('\n').slice(-15).join('\n'));
  } finally {
    restore();
  }
  console.log(`${caught ? 'caught      ' : 'NOT CAUGHT  '} ${name} (${testFile} -t "${filter}")`);
  if (!caught) survived++;
}
process.exit(survived ? 1 : 0);
