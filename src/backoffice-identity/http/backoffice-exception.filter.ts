import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Inject, Logger, type OnModuleInit, Optional } from '@nestjs/common';
import { FILTER_CATCH_EXCEPTIONS } from '@nestjs/common/constants.js';
import { ApplicationConfig, BaseExceptionFilter } from '@nestjs/core';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { isDatabaseUnavailableError } from '../common/database-errors.js';
import { BackOfficeHttpError, type BackOfficeErrorBody } from './backoffice-http-error.js';
import { backOfficeErrorCodeForStatus } from './error-codes.js';
import { BackOfficeNotSupportedError } from '../users/not-supported.error.js';
import { BackOfficeMigrationRequiredError } from '../common/migration-required.error.js';
import { asTokenEndpointError } from '../api-users/oauth-error-body.js';
import {
  BackOfficeHttpPlatform,
  requestPath,
  routedPath,
  type BackOfficeHttpRequest,
  type BackOfficeHttpResponse,
} from './http-platform.js';
import { BACKOFFICE_SECURITY_HEADER_LIST } from './security-headers.js';
import { BackOfficeModulePaths } from './module-paths.js';
import { isReadableBody } from './readable-body.js';

/** Codes of Node's zlib errors (`Z_DATA_ERROR`, ...) and of its Brotli decoder (`ERR__ERROR_FORMAT_PADDING_1`, ...). */
const DECODER_ERROR_CODE = /^(?:Z_|ERR__ERROR_|ERR_BROTLI)/;

/**
 * Formats the module's errors as `{ statusCode, code, message, errors? }`. Bound to the module's own
 * controllers, and app-wide only for what happens before a controller is chosen on a path under the route
 * prefix (body-parser failures: malformed JSON 400 `malformed_json`, too large, bad charset; an unknown route).
 * A path is compared as the routers match it ({@link routedPath}: in any case, escapes decoded), so every spelling
 * that reaches the module's routes gets the module's shape.
 * A database that is unreachable, restarting or past its statement timeout gives 503 `database_unavailable`
 * with `Retry-After`; one that lacks a migration a write needs ({@link BackOfficeMigrationRequiredError}) 503
 * `migration_required`. Unknown errors become a 500 with no detail (logged server-side). Errors of the host
 * app's other routes (a path merely containing the prefix, such as `/api/backoffice/x`, included) go to the
 * host's own global filters, else to Nest's default handling; a `BackOfficeHttpError` (e.g. from the
 * module's guard on a host route) that no host filter takes keeps the module's shape.
 */
@Catch()
export class BackOfficeExceptionFilter extends BaseExceptionFilter implements OnModuleInit {
  private readonly logger = new Logger('BackOfficeIdentity');
  private readonly tokenPath: string;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Inject(BackOfficeHttpPlatform) private readonly platform: BackOfficeHttpPlatform,
    @Inject(BackOfficeModulePaths) private readonly modulePaths: BackOfficeModulePaths,
    @Optional() @Inject(ApplicationConfig) private readonly appConfig?: ApplicationConfig,
  ) {
    super();
    this.tokenPath = `/${options.routePrefix}/auth/token`.toLowerCase();
  }

  /**
   * As the app-wide filter: moves itself behind the host app's global filters, so that it is the one Nest asks
   * first about errors before routing (it hands those of host paths on to the host's filters, see
   * {@link hostFilterFor}). Runs after the routes are registered and before the not-found and body-error
   * handlers are, so the host's own routes keep the precedence the host gave its filters.
   */
  onModuleInit(): void {
    const filters = this.appConfig?.getGlobalFilters();
    const index = filters?.indexOf(this) ?? -1;
    if (filters && index >= 0 && index < filters.length - 1) filters.push(...filters.splice(index, 1));
  }

  override catch(exception: unknown, host: ArgumentsHost): unknown {
    if (host.getType() !== 'http') return super.catch(exception, host);
    const http = host.switchToHttp();
    const request = http.getRequest<BackOfficeHttpRequest>();
    const response = http.getResponse<BackOfficeHttpResponse>();
    const path = requestPath(request);
    const modulePath = this.modulePaths.contains(path);
    if (!modulePath) {
      const hostFilter = this.hostFilterFor(exception);
      if (hostFilter) return hostFilter.catch(exception, host);
      if (!(exception instanceof BackOfficeHttpError)) return super.catch(exception, host);
    }
    if (this.platform.headersSent(response) || BackOfficeExceptionFilter.clientAborted(exception, request)) return;
    if (modulePath) this.setSecurityHeaders(response);
    // A parser error on a body the module does not read at all: the 415 its middleware gives that body on Fastify.
    const unreadable = modulePath && BackOfficeExceptionFilter.bodyParserError(exception) !== undefined && !isReadableBody(request);
    const databaseDown = isDatabaseUnavailableError(exception);
    const error = databaseDown ? BackOfficeHttpError.databaseUnavailable() : unreadable ? BackOfficeHttpError.unsupportedMediaType() : exception;
    if (databaseDown) this.logger.warn(`Database unavailable: ${(exception as Error)?.message ?? String(exception)}`);
    let body = this.toBody(error);
    if (error instanceof BackOfficeHttpError) for (const [k, v] of Object.entries(error.headers)) this.platform.setHeader(response, k, v);
    if (routedPath(path).endsWith(this.tokenPath) && typeof body.error !== 'string' && body.statusCode < 500) {
      body = asTokenEndpointError(body);
      this.platform.setHeader(response, 'Cache-Control', 'no-store');
    }
    this.platform.sendJson(response, body.statusCode, body);
  }

  /**
   * The module middleware's security headers: Express's body parser fails before any middleware runs, so its
   * errors (malformed JSON, too large, wrong charset) would go without them.
   */
  private setSecurityHeaders(response: BackOfficeHttpResponse): void {
    for (const [name, value] of BACKOFFICE_SECURITY_HEADER_LIST) this.platform.setHeader(response, name, value);
    this.platform.removeHeader(response, 'X-Powered-By');
  }

  /**
   * The host app's own global filter that Nest would pick for `exception` if this one were not there: the
   * last registered whose `@Catch()` matches. A module controller's errors never get here (the filter is bound
   * to them), so only host routes, host 404s and errors before routing do.
   */
  private hostFilterFor(exception: unknown): ExceptionFilter | undefined {
    const others = (this.appConfig?.getGlobalFilters() ?? []).filter((filter) => !(filter instanceof BackOfficeExceptionFilter));
    return others.reverse().find((filter) => {
      const types: Array<abstract new (...args: never[]) => unknown> = Reflect.getMetadata(FILTER_CATCH_EXCEPTIONS, filter.constructor) ?? [];
      return types.length === 0 || types.some((type) => exception instanceof type);
    });
  }

  private toBody(exception: unknown): BackOfficeErrorBody {
    if (exception instanceof BackOfficeNotSupportedError) return BackOfficeHttpError.of('not_supported', exception.message).getResponse() as BackOfficeErrorBody;
    // Logged (naming the migration) where it is detected; the answer names nothing of the schema.
    if (exception instanceof BackOfficeMigrationRequiredError) return BackOfficeHttpError.of('migration_required').getResponse() as BackOfficeErrorBody;
    const bodyError = BackOfficeExceptionFilter.bodyParserError(exception);
    if (bodyError) return bodyError.getResponse() as BackOfficeErrorBody;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      if (typeof payload === 'object' && payload !== null && typeof (payload as BackOfficeErrorBody).code === 'string') {
        return payload as BackOfficeErrorBody;
      }
      const message = status >= 500 ? 'Internal server error.' : BackOfficeExceptionFilter.messageOf(payload, exception.message);
      return { statusCode: status, code: backOfficeErrorCodeForStatus(status), message };
    }
    const status = BackOfficeExceptionFilter.clientErrorStatus(exception);
    if (status) {
      // other middleware errors that carry a 4xx status
      return { statusCode: status, code: backOfficeErrorCodeForStatus(status), message: (exception as Error).message };
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
    // Express's parser inflating a body that is not what its Content-Encoding says (zlib's Z_DATA_ERROR for gzip and
    // deflate, the Brotli decoder's ERR__ERROR_* for br): a content coding, which the module refuses anyway (see
    // `readable-body.ts`), as Fastify, which never inflates, does.
    if (typeof error.code === 'string' && DECODER_ERROR_CODE.test(error.code)) return BackOfficeHttpError.unsupportedMediaType();
    const fastifyJson = error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY';
    if (status === 400 && (error instanceof SyntaxError || error.type === 'entity.parse.failed' || fastifyJson)) return BackOfficeHttpError.malformedJson();
    return undefined;
  }

  /**
   * The client closed the connection while its body was being read: Node's `aborted` error (`ECONNRESET`), which
   * Fastify's body reader hands over as is, or body-parser's `request.aborted` on Express. There is no one to answer,
   * and nothing to log: on Fastify its `ECONNRESET` read as a lost database connection, so every aborted upload
   * logged "Database unavailable: aborted".
   */
  private static clientAborted(exception: unknown, request: BackOfficeHttpRequest): boolean {
    const error = (exception instanceof HttpException ? exception.cause : exception) as { code?: unknown; type?: unknown; message?: unknown } | null;
    if (typeof error !== 'object' || error === null) return false;
    const aborted = error.type === 'request.aborted' || (error.code === 'ECONNRESET' && error.message === 'aborted');
    const node = (request.raw ?? request) as { destroyed?: boolean; socket?: { destroyed?: boolean } | null };
    return aborted && Boolean(node.destroyed || node.socket?.destroyed);
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
