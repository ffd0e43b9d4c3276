/**
 * What "per IP" means in the OpenAPI document's 429 descriptions. Every per-IP limit counts an IPv6 client by its
 * `rateLimits.ipv6Subnet` prefix and also by its wider `rateLimits.ipv6AggregateSubnet` prefix at
 * `rateLimits.ipv6AggregateMultiplier` times the limit (`BackOfficeRateLimiter.perIpRules`). The document is built
 * from decorators before the host's options are read, so the text names the options with their defaults. An IPv6
 * address that embeds an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64's `64:ff9b::/96`) is counted as that IPv4
 * address (`ip-rate-limit-key.ts`), which the text says too.
 */
export const PER_IP =
  'per IP (an IPv6 client per its /64, `rateLimits.ipv6Subnet`, and also per its wider /56, `rateLimits.ipv6AggregateSubnet`, ' +
  'at 16 times the limit, `rateLimits.ipv6AggregateMultiplier`: the defaults; no second count for IPv4; an IPv6 address that ' +
  'embeds an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64 `64:ff9b::/96`) counts as that IPv4 address)';

/** The 429 of a route under the sign-in limit alone (`rateLimits.loginPerIp`, as `POST /auth/login`). */
export const TOO_MANY_SIGN_IN_ATTEMPTS = `too_many_requests, with Retry-After: rateLimits.loginPerIp ${PER_IP}, as login`;

/** The 429 of a signed-in route that checks the user's password (`rateLimits.passwordCheckPerIp`, one counter shared by the password checks). */
export const TOO_MANY_PASSWORD_CHECKS = `too_many_requests, with Retry-After: rateLimits.passwordCheckPerIp (default 30 per minute) ${PER_IP}, one counter shared by POST /auth/reauthenticate, its passkey twin, /auth/change-password and /auth/2fa/disable`;

/** The 429 of the signed-in user's own renames (`rateLimits.profileChangePerUser`, one counter per user shared by both routes). */
export const TOO_MANY_PROFILE_CHANGES =
  'too_many_requests, with Retry-After: rateLimits.profileChangePerUser (default 30 per hour per user), one counter shared by PUT /auth/me and PATCH /auth/passkeys/{id}, every request counted';

/** The 429 of a signed-in route that stores a challenge (`rateLimits.challengePerIp`, its own counter per route). */
export const TOO_MANY_CHALLENGES = `too_many_requests, with Retry-After: rateLimits.challengePerIp (default 30 per minute) ${PER_IP}, a counter per route`;
