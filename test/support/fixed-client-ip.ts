import type { BackOfficeIdentityModuleOptions } from '../../src/backoffice-identity/index.js';

/** Module options whose ipResolver answers `ip` for every request (plus `extra`), so a test owns its rate-limit keys. */
export const withIp = (ip: string, extra: BackOfficeIdentityModuleOptions = {}): BackOfficeIdentityModuleOptions => ({
  ipResolver: { useValue: { resolveIp: () => ip } },
  ...extra,
});
