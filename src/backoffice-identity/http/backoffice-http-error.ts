import { HttpException } from '@nestjs/common';
import type { IdentityError, IdentityResult } from '../common/identity-result.js';
import { BACKOFFICE_ERROR_CODES, backOfficeErrorCode, type BackOfficeErrorCode, type BackOfficeErrorCodeInfo } from './error-codes.js';

/** The JSON body of every error: a stable machine-readable `code`. */
export interface BackOfficeErrorBody {
  statusCode: number;
  code: string;
  message: string;
  errors?: Array<IdentityError | { field: string; code: string; description: string }>;
  [extra: string]: unknown;
}

/** An HTTP error with the module's body shape; safe to throw from host routes too. */
export class BackOfficeHttpError extends HttpException {
  constructor(
    status: number,
    readonly code: string,
    message: string,
    extra: Partial<Omit<BackOfficeErrorBody, 'statusCode' | 'code' | 'message'>> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super({ statusCode: status, code, message, ...extra } satisfies BackOfficeErrorBody, status);
  }

  /**
   * The error of a registry code (`BACKOFFICE_ERROR_CODES`): its status and default message unless given.
   * `status` picks one of the code's other documented statuses.
   */
  static of(
    code: BackOfficeErrorCode,
    message?: string,
    extra: Partial<Omit<BackOfficeErrorBody, 'statusCode' | 'code' | 'message'>> = {},
    headers: Record<string, string> = {},
    status?: number,
  ): BackOfficeHttpError {
    const info: BackOfficeErrorCodeInfo = BACKOFFICE_ERROR_CODES[code];
    if (status !== undefined && status !== info.status && !info.alsoStatuses?.includes(status)) {
      throw new Error(`Error code ${code} is not registered with status ${status}`);
    }
    return new BackOfficeHttpError(status ?? info.status, code, message ?? info.message ?? info.description, extra, headers);
  }

  /**
   * The HTTP error of a failed `IdentityResult`: its first error's registry code with that code's status
   * (`statuses` picks one of the code's other documented statuses) and the error's description as message.
   * A code outside the registry (a validator's own) answers 400 `validation_failed` with every error listed.
   */
  static fromResult(result: IdentityResult<unknown>, statuses: Partial<Record<BackOfficeErrorCode, number>> = {}): BackOfficeHttpError {
    const error = result.errors[0];
    if (error?.code === 'invalid_credentials') return BackOfficeHttpError.invalidCredentials();
    if (error && backOfficeErrorCode(error.code)) {
      const code = error.code as BackOfficeErrorCode;
      return BackOfficeHttpError.of(code, error.description, {}, {}, statuses[code]);
    }
    return BackOfficeHttpError.of('validation_failed', error?.description ?? 'The request is not valid.', { errors: [...result.errors] });
  }

  static unauthenticated(): BackOfficeHttpError {
    return new BackOfficeHttpError(401, 'unauthenticated', 'Sign in first.');
  }
  /**
   * 401 `invalid_credentials`, the one answer to a wrong password anywhere (login, change password,
   * re-authenticate, turning 2FA off): the same bytes for an unknown user and a wrong password.
   */
  static invalidCredentials(): BackOfficeHttpError {
    return BackOfficeHttpError.of('invalid_credentials');
  }
  /** 401 from `@RequiresRecentSignIn()` routes: `POST /auth/reauthenticate` first. */
  static reauthenticationRequired(): BackOfficeHttpError {
    return new BackOfficeHttpError(401, 'reauthentication_required', 'Confirm your password first (POST /auth/reauthenticate).');
  }
  /** 503 while the database is unreachable or too slow; the client may retry shortly. */
  static databaseUnavailable(): BackOfficeHttpError {
    return new BackOfficeHttpError(503, 'database_unavailable', 'The service is temporarily unavailable; try again shortly.', {}, { 'Retry-After': '1' });
  }
  static forbidden(): BackOfficeHttpError {
    return new BackOfficeHttpError(403, 'forbidden', 'You may not do this.');
  }
  static notFound(what = 'Not found.'): BackOfficeHttpError {
    return new BackOfficeHttpError(404, 'not_found', what);
  }
  static invalidToken(): BackOfficeHttpError {
    return new BackOfficeHttpError(400, 'invalid_token', 'The link or token is invalid, expired or already used.');
  }
  /** 415: the body must be JSON (the JSON-only guard, and the platform's own refusal of a type it cannot parse). */
  static unsupportedMediaType(): BackOfficeHttpError {
    return new BackOfficeHttpError(415, 'unsupported_media_type', 'Send the body as application/json.');
  }
  /** 400: the body is not a JSON object (either platform's JSON parser refused it, or it is `null`, an array, ...). */
  static malformedJson(): BackOfficeHttpError {
    return new BackOfficeHttpError(400, 'malformed_json', 'The request body must be a JSON object.');
  }
  static payloadTooLarge(): BackOfficeHttpError {
    return new BackOfficeHttpError(413, 'payload_too_large', 'The request body is too large.');
  }
  static localLoginDisabled(): BackOfficeHttpError {
    return new BackOfficeHttpError(403, 'local_login_disabled', 'Local sign-in is disabled; use your external login provider.');
  }
  /** 403 from a passkey sign-in while an admin's forced password reset is pending (told only after a valid passkey). */
  static passwordResetRequired(): BackOfficeHttpError {
    return BackOfficeHttpError.of('password_reset_required');
  }
  /** 409 from `POST /auth/reauthenticate` for a user with no password to check (an external provider's user). */
  static noLocalPassword(): BackOfficeHttpError {
    return new BackOfficeHttpError(409, 'no_local_password', 'This account has no password; re-authenticate through your external login provider.');
  }
  /** For token + new-password flows: 400 `invalid_token`, else 400 `invalid_password` with the errors. */
  static throwIfTokenFlowFailed(result: IdentityResult): void {
    if (result.succeeded) return;
    if (result.errors.some((e) => e.code === 'invalid_token')) throw BackOfficeHttpError.invalidToken();
    throw BackOfficeHttpError.invalidPassword(result.errors);
  }

  /** 400 with the IdentityResult errors of a refused password. */
  static invalidPassword(errors: readonly IdentityError[]): BackOfficeHttpError {
    return new BackOfficeHttpError(400, 'invalid_password', 'The password does not meet the requirements.', { errors: [...errors] });
  }
}
