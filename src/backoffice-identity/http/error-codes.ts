/** One entry of the error-code registry. */
export interface BackOfficeErrorCodeInfo {
  /** The HTTP status the code is answered with. */
  readonly status: number;
  /** Other statuses the same code is answered with on some routes (e.g. `invalid_code` at enrolment: 400). */
  readonly alsoStatuses?: readonly number[];
  /** What the code means for a client. */
  readonly description: string;
  /** The default `message` of the error body. */
  readonly message?: string;
}

/**
 * Every top-level `code` the module answers with: its HTTP status and what it means. The HTTP errors
 * (`BackOfficeHttpError.of`), the OpenAPI error responses (`ApiErrors`) and the README's error-code table come
 * from here; a unit test checks that every code thrown in the source is listed, with its status.
 */
export const BACKOFFICE_ERROR_CODES = {
  bad_request: { status: 400, description: 'The request is not valid (a generic 400 from the platform).' },
  malformed_json: { status: 400, description: 'The body is not a JSON object.', message: 'The request body must be a JSON object.' },
  validation_failed: { status: 400, description: 'A field is missing, of the wrong type, too long or not allowed; `errors` lists each field.' },
  invalid_password: { status: 400, description: 'The new password breaks the password policy; `errors` lists the rules.', message: 'The password does not meet the requirements.' },
  invalid_token: { status: 400, alsoStatuses: [401], description: 'The link or token is invalid, expired or already used (401 for a bearer token).', message: 'The link or token is invalid, expired or already used.' },
  invalid_code: { status: 401, alsoStatuses: [400], description: 'The second-factor code is wrong (401 at sign-in, counted; 400 at enrolment).', message: 'The code is not valid.' },
  user_verification_required: {
    status: 401,
    description: 'Passkey sign-in: the passkey did not verify the user (PIN, biometrics), 2FA is on and the user has no other second factor; sign in again with user verification.',
    message: 'Use your passkey again with its PIN or biometrics (user verification).',
  },
  invalid_passkey: { status: 401, alsoStatuses: [400], description: 'The passkey was refused (401 at sign-in; 400 at registration).' },
  invalid_passkey_name: { status: 400, description: 'A passkey name must be 1 to 64 characters without control characters.' },
  invalid_return_url: { status: 400, description: 'returnUrl must be a same-origin path.' },
  token_in_query: { status: 400, description: 'A token (an access token or an invite) was sent in the URL; send it in the Authorization header or the request body.' },
  unknown_provider: { status: 400, description: 'No such (or no usable) two-factor provider.' },
  invalid_request: { status: 400, alsoStatuses: [415], description: 'OAuth 2.0 (RFC 6749 5.2): the token request is malformed.' },
  credentials_in_query: { status: 400, description: 'OAuth 2.0: token request parameters in the query string are refused; send them in the body.' },
  unsupported_grant_type: { status: 400, description: 'OAuth 2.0: only client_credentials is supported.' },
  unauthenticated: { status: 401, description: 'No valid session or bearer token: sign in first.', message: 'Sign in first.' },
  invalid_credentials: {
    status: 401,
    description: 'Wrong username or password (login), or wrong current password (change password, re-authenticate, turn 2FA off). Unknown users and wrong passwords get the same answer.',
    message: 'The username or password is incorrect.',
  },
  invalid_client: { status: 401, description: 'OAuth 2.0: client authentication failed.' },
  reauthentication_required: { status: 401, description: 'A step-up route: confirm the password first (POST /auth/reauthenticate).', message: 'Confirm your password first (POST /auth/reauthenticate).' },
  two_factor_expired: { status: 401, description: 'No pending two-factor sign-in (expired, used or never started): sign in with the password again.', message: 'The sign-in expired; sign in with your password again.' },
  forbidden: { status: 403, description: 'The signed-in user lacks a permission for this, or acts on a user holding more than they do (admin, or a permission they lack).', message: 'You may not do this.' },
  xsrf_failed: { status: 403, description: 'The X-XSRF-TOKEN header does not match the XSRF cookie.' },
  not_allowed: { status: 403, description: 'The account may not sign in (disabled, or invited and not yet accepted).', message: 'This account may not sign in.' },
  local_login_disabled: { status: 403, description: 'Password sign-in is off (denyLocalLogin): use an external login.', message: 'Local sign-in is disabled; use your external login provider.' },
  password_reset_required: {
    status: 403,
    description: 'An administrator reset the password; set a new one with the emailed link (or forgot-password) first. Passkey sign-in: answered only after a valid passkey. POST /auth/passkeys: the reset came while the registration was under way (no passkey added).',
    message: 'An administrator reset your password: set a new one with the emailed link, then sign in.',
  },
  two_factor_required: { status: 403, description: 'A group of the user requires two-factor authentication: it cannot be turned off.' },
  two_factor_setup_required: { status: 403, description: 'A setup-only session reaches only the two-factor enrolment routes.' },
  not_found: { status: 404, description: 'No such resource (or the capability is off).', message: 'Not found.' },
  login_not_found: { status: 404, description: 'The user has no login of this provider.' },
  method_not_allowed: { status: 405, description: 'The route does not take this method.' },
  not_acceptable: { status: 406, description: 'The route cannot answer in an accepted format.' },
  request_timeout: { status: 408, description: 'The request took too long to arrive.' },
  conflict: { status: 409, description: 'The request conflicts with the current state (a generic 409).' },
  duplicate_email: { status: 409, description: 'Another user has this email.' },
  duplicate_group: { status: 409, description: 'A group with this alias exists.' },
  builtin_group: { status: 409, description: 'Built-in groups cannot be deleted or renamed.' },
  admin_group_permissions: { status: 409, description: 'The admin group always holds every permission.' },
  group_has_members: { status: 409, description: 'The group still has members.' },
  last_admin: { status: 409, description: 'The change would leave no enabled admin who can sign in.' },
  groups_managed_by_provider: { status: 409, description: 'An external provider manages this user\'s groups.' },
  cannot_delete_self: { status: 409, description: 'A user cannot delete themselves.' },
  cannot_unlock_self: { status: 409, description: 'A user cannot unlock their own account: another admin unlocks it, or the lock runs out.' },
  not_invited: { status: 409, description: 'The user is not waiting for an invite.' },
  not_applicable: { status: 409, description: 'The action does not apply to this user (e.g. no password to reset).' },
  directory_managed: { status: 409, description: 'The directory (LDAP) manages this user\'s password: reset it there.' },
  no_local_password: { status: 409, description: 'The account has no password: re-authenticate through the external provider.' },
  login_already_linked: { status: 409, description: 'The external login is linked to someone, or the user has one of this provider.' },
  last_login_method: { status: 409, description: 'Removing this login would leave no way to sign in.' },
  passkey_already_registered: { status: 409, description: 'This passkey is registered already.' },
  last_second_factor: { status: 409, description: "Removing this passkey would leave two-factor on with no second factor." },
  too_many_passkeys: { status: 409, description: 'The account has the most passkeys it may have.' },
  two_factor_already_enabled: { status: 409, description: 'Two-factor authentication is on already.', message: 'Two-factor authentication is already on.' },
  two_factor_not_enabled: { status: 409, description: 'Two-factor authentication is not on.', message: 'Two-factor authentication is not on.' },
  payload_too_large: { status: 413, description: 'The request body is too large.', message: 'The request body is too large.' },
  too_many_records: { status: 413, description: 'An import request carries more records than allowed (the CLI takes any number).' },
  unsupported_media_type: { status: 415, description: 'The body must be application/json.', message: 'Send the body as application/json.' },
  unprocessable_entity: { status: 422, description: 'The request is well-formed but cannot be processed.' },
  locked_out: { status: 423, description: 'The account is locked after too many failed attempts; `retryAfterSeconds` (null: until an admin unlocks).', message: 'The account is locked after too many failed attempts.' },
  too_many_requests: { status: 429, description: 'A rate limit is reached; retry after `Retry-After` seconds.', message: 'Too many requests; try again later.' },
  internal_error: { status: 500, description: 'An unexpected error (logged server-side, no detail in the answer).', message: 'Internal server error.' },
  not_supported: { status: 501, description: 'The configured user store lacks a capability the request needs (see "Missing capabilities").' },
  email_failed: { status: 502, description: 'The change was made but the email could not be sent.' },
  database_unavailable: { status: 503, description: 'The database is unreachable or too slow; retry after `Retry-After`.', message: 'The service is temporarily unavailable; try again shortly.' },
  provider_unavailable: { status: 503, description: 'The external login provider\'s discovery has not succeeded yet.' },
  migration_required: {
    status: 503,
    description: 'The database lacks a migration of the module that this request needs (named in the server log); it answers once the host runs the migrations.',
    message: 'This is not available until the database is migrated.',
  },
} as const satisfies Record<string, BackOfficeErrorCodeInfo>;

/** A code of the registry. */
export type BackOfficeErrorCode = keyof typeof BACKOFFICE_ERROR_CODES;

/** The registry entry of `code`, or undefined for a code the module does not define (e.g. a host's own). */
export function backOfficeErrorCode(code: string): BackOfficeErrorCodeInfo | undefined {
  return Object.hasOwn(BACKOFFICE_ERROR_CODES, code) ? (BACKOFFICE_ERROR_CODES as Record<string, BackOfficeErrorCodeInfo>)[code] : undefined;
}

/** The generic code of a status (used for errors that carry no code of their own). */
export function backOfficeErrorCodeForStatus(status: number): BackOfficeErrorCode {
  const generic: Partial<Record<number, BackOfficeErrorCode>> = {
    400: 'bad_request', 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 406: 'not_acceptable',
    408: 'request_timeout', 409: 'conflict', 413: 'payload_too_large', 415: 'unsupported_media_type', 422: 'unprocessable_entity', 429: 'too_many_requests',
  };
  return generic[status] ?? (status >= 500 ? 'internal_error' : 'bad_request');
}

/** The README's error-code table (Markdown), generated from the registry. */
export function renderBackOfficeErrorCodeTable(): string {
  const rows = Object.entries(BACKOFFICE_ERROR_CODES as Record<string, BackOfficeErrorCodeInfo>)
    .sort(([a, x], [b, y]) => x.status - y.status || a.localeCompare(b))
    .map(([code, info]) => `| \`${code}\` | ${[info.status, ...(info.alsoStatuses ?? [])].join(', ')} | ${info.description.replace(/\|/g, '\\|')} |`);
  return ['| Code | Status | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
