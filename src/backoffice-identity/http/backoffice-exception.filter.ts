import { type ArgumentsHost, Catch, HttpException, Inject, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { isDatabaseUnavailableError } from '../common/database-errors.js';
import { BackOfficeHttpError, type BackOfficeErrorBody } from './backoffice-http-error.js';
import { asTokenEndpointError } from '../api-users/oauth-error-body.js';
import { BackOfficeHttpPlatform, requestPath, type BackOfficeHttpRequest, type BackOfficeHttpResponse } from './http-platform.js';

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
  private readonly tokenPath: string;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
  ) {
    super();
    this.prefix = `/${options.routePrefix}/`;
    this.tokenPath = `/${options.routePrefix}/auth/token`;
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return super.catch(exception, host);
    const http = host.switchToHttp();
    const request = http.getRequest<BackOfficeHttpRequest>();
    const response = http.getResponse<BackOfficeHttpResponse>();
    const path = requestPath(request);
    if (!`${path}/`.includes(this.prefix) && !(exception instanceof BackOfficeHttpError)) return super.catch(exception, host);
    if (this.platform.headersSent(response)) return;
    const error = isDatabaseUnavailableError(exception) ? BackOfficeHttpError.databaseUnavailable() : exception;
    if (error !== exception) this.logger.warn(`Database unavailable: ${(exception as Error)?.message ?? String(exception)}`);
    let body = this.toBody(error);
    if (error instanceof BackOfficeHttpError) for (const [k, v] of Object.entries(error.headers)) this.platform.setHeader(response, k, v);
    if (path.endsWith(this.tokenPath) && typeof body.error !== 'string' && body.statusCode < 500) {
      body = asTokenEndpointError(body);
      this.platform.setHeader(response, 'Cache-Control', 'no-store');
    }
    this.platform.sendJson(response, body.statusCode, body);
  }

  private toBody(exception: unknown): BackOfficeErrorBody {
    const bodyError = BackOfficeExceptionFilter.bodyParserError(exception);
    if (bodyError) return bodyError.getResponse() as BackOfficeErrorBody;
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
      // other middleware errors that carry a 4xx status
      return { statusCode: status, code: CODES[status] ?? 'bad_request', message: (exception as Error).message };
    }
    this.logger.error(`Unhandled error: ${exception instanceof Error ? `${exception.name}: ${exception.message}` : String(exception)}`);
    return { statusCode: 500, code: 'internal_error', message: 'Internal server error.' };
  }

  /**
   * The body errors of either platform's parser (Express's body-parser, Fastify's content-type parsers), which
   * Nest's adapters hand over as an `HttpException` caused by the parser's error (or, unmapped, as that error
   * itself), as the same answer: 400 `malformed_json`, 413 `payload_too_large`, 415 `unsupported_media_type`.
   */
  private static bodyParserError(exception: unknown): BackOfficeHttpError | undefined {
    // An HttpException of our own (or of a host route) is not a parser error: only what it wraps may be.
    const error = (exception instanceof HttpException ? exception.cause : exception) as {
      status?: unknown;
      statusCode?: unknown;
      type?: unknown;
      code?: unknown;
    } | null;
    if (typeof error !== 'object' || error === null) return undefined;
    const status = error.statusCode ?? error.status;
    if (status === 413) return BackOfficeHttpError.payloadTooLarge();
    if (status === 415) return BackOfficeHttpError.unsupportedMediaType();
    const fastifyJson = error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY';
    if (status === 400 && (error instanceof SyntaxError || error.type === 'entity.parse.failed' || fastifyJson)) return BackOfficeHttpError.malformedJson();
    return undefined;
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
