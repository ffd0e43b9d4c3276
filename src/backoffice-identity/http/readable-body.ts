import { BackOfficeHttpError } from './backoffice-http-error.js';
import { requestHeader, type BackOfficeHttpRequest } from './http-platform.js';

/** The media types the module's routes read (JSON everywhere, a form on the routes that take one). */
const READABLE_MEDIA_TYPES = new Set(['application/json', 'application/x-www-form-urlencoded']);
const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** UTF-8 under its IANA name and its WHATWG label `utf8` (which OAuth and HTTP client libraries send). */
const UTF8_LABELS = new Set(['utf-8', 'utf8']);

/**
 * Refuses, with 415 `unsupported_media_type`, a request body under the route prefix that the module cannot read as
 * it reads bodies: a media type other than JSON or a form (or none), a charset other than UTF-8 (RFC 8259 8.1; `utf-8`
 * or `utf8`, any case, quoted or not), or
 * a content coding (`Content-Encoding` other than `identity`). The platforms' parsers disagree on exactly these:
 * Express's refuse a Latin-1 charset and an unknown coding, decode UTF-16 and gzip, and skip a multipart, text or
 * untyped body (the route then runs as if no body had come); Fastify's refuse multipart and untyped bodies and read
 * the rest as UTF-8 JSON whatever the charset or coding says. So one request was refused on one platform and carried
 * out on the other without the fields the client sent (a timed disable became a permanent one). Checked in the
 * module's middleware: on Fastify before its parsers run, on Express after (a body its parsers refused never gets here;
 * `charset=utf8`, which Express's body-parser refuses, is renamed `utf-8` before them: `BackOfficeExpressUtf8Label`).
 *
 * A body framed by `Transfer-Encoding` without a `Content-Type` is refused even when it turns out empty: its length is
 * not known before it is read, and Fastify refuses an untyped chunked body itself (its content-type parsers run on the
 * empty type) whatever this says. A POST without a body sends no framing or `Content-Length: 0` and passes.
 */
export function assertReadableBody(request: BackOfficeHttpRequest): void {
  if (!isReadableBody(request)) throw BackOfficeHttpError.unsupportedMediaType();
}

/**
 * False for a request body that {@link assertReadableBody} refuses. Express's parsers run before the module's
 * middleware: the exception filter answers their errors on such a body (UTF-8 bytes labelled UTF-16, a gzip body too
 * large once inflated) with the same 415 as Fastify, where the middleware refuses the body before any parser reads it.
 */
export function isReadableBody(request: BackOfficeHttpRequest): boolean {
  if (!METHODS_WITH_BODY.has((request.method ?? '').toUpperCase())) return true;
  const length = requestHeader(request, 'content-length');
  const hasBody = request.headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '0');
  if (!hasBody) return true;
  const coding = request.headers['content-encoding'];
  if (coding !== undefined && (typeof coding !== 'string' || coding.trim().toLowerCase() !== 'identity')) return false;
  const [mediaType, ...parameters] = (requestHeader(request, 'content-type') ?? '').split(';');
  if (!READABLE_MEDIA_TYPES.has(mediaType.trim().toLowerCase())) return false;
  return parameters.every((parameter) => {
    const charset = charsetOf(parameter);
    return charset === undefined || UTF8_LABELS.has(charset);
  });
}

/**
 * `contentType` with a `charset` parameter naming UTF-8 by its WHATWG label `utf8` (any case, quoted or not) renamed
 * `utf-8`, the name Express's body-parser knows (it refuses `utf8` with 415); anything else as it was.
 */
export function withUtf8CharsetName(contentType: string): string {
  const [mediaType, ...parameters] = contentType.split(';');
  if (!parameters.some((parameter) => charsetOf(parameter) === 'utf8')) return contentType;
  return [mediaType, ...parameters.map((parameter) => (charsetOf(parameter) === 'utf8' ? ' charset=utf-8' : parameter))].join(';');
}

/** The charset a `Content-Type` parameter names (unquoted, lower case), or `undefined` for another parameter. */
function charsetOf(parameter: string): string | undefined {
  const eq = parameter.indexOf('=');
  if (eq === -1 || parameter.slice(0, eq).trim().toLowerCase() !== 'charset') return undefined;
  return parameter.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
}
