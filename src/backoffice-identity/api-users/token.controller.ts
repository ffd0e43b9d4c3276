import { Body, Controller, Header, HttpCode, Inject, Post, Req } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { IncomingMessage } from 'node:http';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { BackOfficeRateLimiter } from '../rate-limit/backoffice-rate-limiter.js';
import { ErrorResponse } from '../auth/auth.dto.js';
import { BackOfficeApiUserService, oauthError, type BackOfficeAccessTokenResponse } from './backoffice-api-user.service.js';
import { TOKEN_ENDPOINT_MEDIA_MESSAGE } from './oauth-error-body.js';
import { BackOfficeHttpError, type BackOfficeErrorBody } from '../http/backoffice-http-error.js';
import { requestMediaType } from '../http/readable-body.js';
import { OAuthErrorResponse, TokenRequestDto, TokenResponse } from './api-users.dto.js';
import { PER_IP } from '../openapi/rate-limit-descriptions.js';

const MAX_FIELD = 512;

/** Reads `Authorization: Basic` (RFC 6749 2.3.1: each part form-url-encoded), or null when absent. */
function basicCredentials(header: string | undefined): { clientId: string; clientSecret: string } | null {
  if (!header || !/^basic\s/i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw oauthError(400, 'invalid_request', 'Malformed HTTP Basic credentials.');
  try {
    const decode = (part: string) => decodeURIComponent(part.replace(/\+/g, ' '));
    return { clientId: decode(decoded.slice(0, colon)), clientSecret: decode(decoded.slice(colon + 1)) };
  } catch {
    throw oauthError(400, 'invalid_request', 'Malformed HTTP Basic credentials.');
  }
}

/** One optional string field of the body; arrays, objects and oversized values are malformed requests. */
function field(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_FIELD) throw oauthError(400, 'invalid_request', `${name} must be one string.`);
  return value;
}

/** The OAuth 2.0 token endpoint for API users: client credentials grant only (RFC 6749 4.4). */
@ApiTags('auth')
@Controller('auth')
export class TokenController {
  constructor(
    @Inject(BackOfficeApiUserService) private readonly apiUsers: BackOfficeApiUserService,
    @Inject(BackOfficeRateLimiter) private readonly rateLimiter: BackOfficeRateLimiter,
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
  ) {}

  @Post('token')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiConsumes('application/x-www-form-urlencoded', 'application/json')
  @ApiBody({ type: TokenRequestDto })
  @ApiOkResponse({ type: TokenResponse, description: 'An opaque bearer token (RFC 6749 4.4.3); no refresh token' })
  @ApiResponse({ status: 400, type: OAuthErrorResponse, description: 'invalid_request (missing or repeated parameters, credentials in the query string, two client authentication methods; code malformed_json: JSON that is not an object) or unsupported_grant_type' })
  @ApiResponse({ status: 401, type: OAuthErrorResponse, description: 'invalid_client: unknown client, wrong secret, locked or disabled (one answer for all)' })
  @ApiResponse({ status: 415, type: ErrorResponse, description: 'unsupported_media_type' })
  @ApiResponse({ status: 429, type: ErrorResponse, description: `too_many_requests, with Retry-After: rateLimits.loginPerIp ${PER_IP}, as login; rateLimits.tokenPerIpAndClient per IP + client id` })
  async token(@Req() request: IncomingMessage & { body?: unknown }, @Body() rawBody: unknown): Promise<BackOfficeAccessTokenResponse> {
    // A body in another charset or coding was refused by the module's middleware (RFC 6749 Appendix B: UTF-8 only, see
    // `readable-body.ts`); this refuses a request without a body or without either media type.
    const type = requestMediaType(request);
    if (type !== 'application/x-www-form-urlencoded' && type !== 'application/json') {
      throw oauthError(415, 'invalid_request', TOKEN_ENDPOINT_MEDIA_MESSAGE, 'unsupported_media_type');
    }
    if (/[?&](client_secret|client_id|access_token|grant_type)=/.test(request.url ?? '')) {
      throw oauthError(400, 'invalid_request', 'Parameters in the query string are refused: send them in the body.', 'credentials_in_query');
    }
    // JSON that is not an object (`null`, a string, an array): the answer Express's parser gives the first two before
    // this runs (400 `malformed_json`), for all three on both platforms (Fastify's parser reads them).
    if (typeof rawBody !== 'object' || rawBody === null || Array.isArray(rawBody)) {
      throw oauthError(400, 'invalid_request', (BackOfficeHttpError.malformedJson().getResponse() as BackOfficeErrorBody).message, 'malformed_json');
    }
    const body = rawBody as Record<string, unknown>;
    const grantType = field(body, 'grant_type');
    if (grantType === undefined) throw oauthError(400, 'invalid_request', 'grant_type is required.');
    if (grantType !== 'client_credentials') throw oauthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported.');
    field(body, 'scope');
    const basic = basicCredentials(request.headers.authorization);
    const bodyId = field(body, 'client_id');
    const bodySecret = field(body, 'client_secret');
    if (basic && (bodyId !== undefined || bodySecret !== undefined)) {
      throw oauthError(400, 'invalid_request', 'Use one client authentication method: HTTP Basic or the body, not both.');
    }
    const credentials = basic ?? { clientId: bodyId, clientSecret: bodySecret };
    if (!credentials.clientId || !credentials.clientSecret) throw oauthError(400, 'invalid_request', 'client_id and client_secret are required.');
    await this.rateLimiter.enforceSignInPerIp('token-ip', {
      name: 'token-ip-client',
      key: credentials.clientId.slice(0, 64),
      limit: this.options.rateLimits.tokenPerIpAndClient,
    });
    return this.apiUsers.issueToken(credentials.clientId, credentials.clientSecret);
  }
}
