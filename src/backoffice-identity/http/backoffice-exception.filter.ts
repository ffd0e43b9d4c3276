import { type ArgumentsHost, Catch, HttpException, Inject, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Request, Response } from 'express';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { isDatabaseUnavailableError } from '../common/database-errors.js';
import { BackOfficeHttpError, type BackOfficeErrorBody } from './backoffice-http-error.js';

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
};

/**
 * Formats every error under the module's route prefix as `{ statusCode, code, message, errors? }`:
 * body-parser failures (malformed JSON: 400 `malformed_json`; too large, bad charset) included. A database
 * that is unreachable, restarting or past its statement timeout gives 503 `database_unavailable` with
 * `Retry-After`. Unknown errors become a 500 with no detail (logged server-side). Errors on the host app's
 * other routes keep the host's default handling.
 */
@Catch()
export class BackOfficeExceptionFilter extends BaseExceptionFilter {
  private readonly logger = new Logger('BackOfficeIdentity');
  private readonly prefix: string;

  constructor(@Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions) {
    super();
    this.prefix = `/${options.routePrefix}/`;
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return super.catch(exception, host);
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const path = (request.originalUrl ?? request.url ?? '').split('?')[0];
    if (!`${path}/`.includes(this.prefix) && !(exception instanceof BackOfficeHttpError)) return super.catch(exception, host);
    if (response.headersSent) return;
    const error = isDatabaseUnavailableError(exception) ? BackOfficeHttpError.databaseUnavailable() : exception;
    if (error !== exception) this.logger.warn(`Database unavailable: ${(exception as Error)?.message ?? String(exception)}`);
    const body = this.toBody(error);
    if (error instanceof BackOfficeHttpError) for (const [k, v] of Object.entries(error.headers)) response.setHeader(k, v);
    response.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): BackOfficeErrorBody {
    if (BackOfficeExceptionFilter.isMalformedJson(exception)) {
      return { statusCode: 400, code: 'malformed_json', message: 'The request body is not valid JSON.' };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      if (typeof payload === 'object' && payload !== null && typeof (payload as BackOfficeErrorBody).code === 'string') {
        return payload as BackOfficeErrorBody;
      }
      const message = status >= 500 ? 'Internal server error.' : BackOfficeExceptionFilter.messageOf(payload, exception.message);
      return { statusCode: status, code: CODES[status] ?? (status >= 500 ? 'internal_error' : 'bad_request'), message };
    }
    const status = BackOfficeExceptionFilter.clientErrorStatus(exception);
    if (status) {
      // body-parser and other middleware errors that carry a 4xx status
      return { statusCode: status, code: CODES[status] ?? 'bad_request', message: (exception as Error).message };
    }
    this.logger.error(`Unhandled error: ${exception instanceof Error ? `${exception.name}: ${exception.message}` : String(exception)}`);
    return { statusCode: 500, code: 'internal_error', message: 'Internal server error.' };
  }

  /**
   * A body that is not JSON: body-parser's `entity.parse.failed` (Nest's Express adapter wraps it in a
   * `BadRequestException` whose `cause` is the parser's `SyntaxError`), or a parser `SyntaxError` itself.
   */
  private static isMalformedJson(exception: unknown): boolean {
    const parserError = (e: unknown) =>
      typeof e === 'object' && e !== null && ((e as { type?: unknown }).type === 'entity.parse.failed' || e instanceof SyntaxError);
    if (exception instanceof HttpException) return exception.getStatus() === 400 && parserError(exception.cause);
    return parserError(exception) && BackOfficeExceptionFilter.clientErrorStatus(exception) === 400;
  }

  private static clientErrorStatus(exception: unknown): number | undefined {
    const status = (exception as { status?: unknown; statusCode?: unknown })?.status ?? (exception as { statusCode?: unknown })?.statusCode;
    return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
  }

  private static messageOf(payload: unknown, fallback: string): string {
    if (typeof payload === 'string') return payload;
    const message = (payload as { message?: unknown })?.message;
    if (typeof message === 'string') return message;
    if (Array.isArray(message)) return message.join('; ');
    return fallback;
  }
}
