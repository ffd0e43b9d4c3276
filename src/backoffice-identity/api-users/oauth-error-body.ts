import type { BackOfficeErrorBody } from '../http/backoffice-http-error.js';

/** The media types `POST /auth/token` reads (RFC 6749 4.4.2 form, or JSON). */
export const TOKEN_ENDPOINT_MEDIA_MESSAGE = 'Send the body as application/x-www-form-urlencoded or application/json.';

/**
 * RFC 6749 5.2 for an error the token endpoint's controller never saw: a body that either platform's parser
 * refused (malformed, too large, a type it has no parser for). Such errors get `error: invalid_request` and
 * `error_description` beside the module's `code`, as the controller's own errors do, so an OAuth client reads
 * every 4xx of the endpoint the same way, on Express and on Fastify alike.
 */
export function asTokenEndpointError(body: BackOfficeErrorBody): BackOfficeErrorBody {
  if (body.statusCode >= 500 || typeof body.error === 'string') return body;
  const code = body.code === 'bad_request' ? 'invalid_request' : body.code;
  const message = body.code === 'unsupported_media_type' ? TOKEN_ENDPOINT_MEDIA_MESSAGE : body.message;
  return { ...body, code, message, error: 'invalid_request', error_description: message };
}
