import { randomBytes } from 'node:crypto';
import type { BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';

/** Module options whose ipResolver answers `ip` for every request (plus `extra`), so a test owns its rate-limit keys. */
export const withIp = (ip: string, extra: BackOfficeIdentityModuleOptions = {}): BackOfficeIdentityModuleOptions => ({
  ipResolver: { useValue: { resolveIp: () => ip } },
  ...extra,
});

/** Module options whose ipResolver answers each request's `x-test-ip` header, so one session can come from several addresses. */
export const ipFromTestHeader: BackOfficeIdentityModuleOptions = {
  ipResolver: { useValue: { resolveIp: (request: { headers: Record<string, unknown> }) => String(request.headers['x-test-ip']) } },
};

/** A random address in 10.0.0.0/8: a rate-limit budget of its own. */
export function uniqueIpv4(): string {
  const b = randomBytes(3);
  return `10.${b[0]}.${b[1]}.${b[2]}`;
}
