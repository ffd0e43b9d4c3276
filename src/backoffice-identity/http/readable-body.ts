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
  setAsideEmptyBodyType(request);
  markBody(request);
}

/**
 * False for a request body that {@link assertReadableBody} refuses. Express's parsers run before the module's
 * middleware: the exception filter answers their errors on such a body (UTF-8 bytes labelled UTF-16, a gzip body too
 * large once inflated) with the same 415 as Fastify, where the middleware refuses the body before any parser reads it.
 */
export function isReadableBody(request: BackOfficeHttpRequest): boolean {
  if (!METHODS_WITH_BODY.has((request.method ?? '').toUpperCase())) return true;
  const length = requestHeader(request, 'content-length')?.trim();
  const [mediaType, ...parameters] = (requestContentType(request) ?? '').split(';');
  const readableType = READABLE_MEDIA_TYPES.has(mediaType.trim().toLowerCase());
  // Express's parsers check the charset and coding of an empty JSON or form body sent with `Content-Length: 0` too.
  const hasBody = request.headers['transfer-encoding'] !== undefined || (length !== undefined && (length !== '0' || readableType));
  if (!hasBody) return true;
  const coding = request.headers['content-encoding'];
  if (coding !== undefined && (typeof coding !== 'string' || coding.trim().toLowerCase() !== 'identity')) return false;
  if (!readableType) return false;
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

/** The `Content-Type` of a body known to be empty, set aside on Fastify (by Node request: see {@link setAsideEmptyBodyType}). */
const emptyBodyTypes = new WeakMap<object, string>();

/**
 * A body known to be empty before it is read (no `Transfer-Encoding`; `Content-Length: 0` or none) is no body on both
 * platforms, whatever its `Content-Type` says: `fetch('/logout', { method: 'POST', headers: { 'Content-Type':
 * 'application/json' } })` sends one. Express's JSON parser reads it as no fields; Fastify's refuses it
 * (`FST_ERR_CTP_EMPTY_JSON_BODY`, 400 `malformed_json`) before the route runs. So on Fastify, whose parsers run after
 * the module's middleware, the header is set aside (Fastify then runs the route without parsing, as for a request
 * without a body), and {@link requestContentType} still tells the module's checks what the client sent. Does nothing
 * on Express, where the parsers already ran (the request then has a `body` field, or a route: `originalUrl`).
 */
function setAsideEmptyBodyType(request: BackOfficeHttpRequest): void {
  if (!METHODS_WITH_BODY.has((request.method ?? '').toUpperCase()) || request.headers['transfer-encoding'] !== undefined) return;
  const length = request.headers['content-length'];
  if (length !== undefined && length !== '0') return;
  const contentType = request.headers['content-type'];
  if (typeof contentType !== 'string' || 'body' in request) return;
  emptyBodyTypes.set(request.raw ?? request, contentType);
  delete request.headers['content-type'];
}

/** A request whose `body` the platform's parser sets. */
export type BackOfficeHttpRequestWithBody = BackOfficeHttpRequest & { body?: unknown };

/**
 * True for a request whose `Content-Type` was set aside ({@link setAsideEmptyBodyType}) and that Express's parsers
 * would read as no fields (`{}`): a JSON or form body with `Content-Length: 0` (without any framing, Express's parsers
 * leave the body out, and so does Fastify once the type is set aside).
 */
export function emptyBodyReadAsNoFields(request: BackOfficeHttpRequestWithBody): boolean {
  const contentType = emptyBodyTypes.get(request.raw ?? request);
  return contentType !== undefined && request.headers['content-length'] === '0' && READABLE_MEDIA_TYPES.has(mediaTypeOf(contentType));
}

/** The request's `Content-Type` as the client sent it (also one set aside for an empty body on Fastify), or undefined. */
export function requestContentType(request: BackOfficeHttpRequest): string | undefined {
  return requestHeader(request, 'content-type') ?? emptyBodyTypes.get(request.raw ?? request);
}

/** The media type of a `Content-Type` value, without parameters, trimmed and in lower case (`''` for none). */
export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/** {@link mediaTypeOf} the request's {@link requestContentType}. */
export function requestMediaType(request: BackOfficeHttpRequest): string {
  return mediaTypeOf(requestContentType(request));
}

/** Fastify requests (by Node request) under the route prefix with a body, to its media type, marked before Fastify parses it. */
const bodyMediaTypes = new WeakMap<object, string>();

/**
 * Marks a body the platform has not parsed yet (Fastify: its parsers run after the module's middleware) with its media
 * type, so that {@link readFormFieldsAsExpress} can give the route the fields Express reads from a form
 * (`application/x-www-form-urlencoded`) and {@link jsonBodyExpressRefuses} can tell a JSON body (`application/json`).
 * Does nothing on Express, whose parsers already ran.
 */
function markBody(request: BackOfficeHttpRequest): void {
  if (!METHODS_WITH_BODY.has((request.method ?? '').toUpperCase()) || 'body' in request) return;
  bodyMediaTypes.set(request.raw ?? request, mediaTypeOf(requestHeader(request, 'content-type')));
}

/** The media type {@link markBody} marked the request's body with, or undefined (Express, no body, outside the prefix). */
function markedBodyMediaType(request: BackOfficeHttpRequest): string | undefined {
  return bodyMediaTypes.get(request.raw ?? request);
}

/**
 * True on Fastify for a JSON body (marked by {@link markBody}) that parsed to neither an object nor an array
 * (`null`, `"x"`, `1`, `true`): Express's JSON parser (body-parser, strict by default) refuses such a body before
 * any guard runs (400 `malformed_json`), while Fastify's parser reads it and the route's guards answered first (401
 * `unauthenticated`, 403 `xsrf_failed`), so the same request got another status on each platform.
 */
export function jsonBodyExpressRefuses(request: BackOfficeHttpRequestWithBody): boolean {
  const body = request.body;
  return markedBodyMediaType(request) === 'application/json' && body !== undefined && (body === null || typeof body !== 'object');
}

/**
 * The name of a parsed form's object that came first in the body, as far as a byte order mark goes. `Object.keys` lists
 * integer-like names (array indexes, `0`, `7`) before the others whatever their place in the body, and keeps the body's
 * order for the rest; a name that starts with U+FEFF is never integer-like, so the field a leading mark sits on is the
 * first name that is not an array index (`\ufeffgrant_type=client_credentials&0=y` lists `0` first). Undefined when
 * every name is integer-like (no mark to drop). Only integer-like names before a marked one (`0=y&\ufeffa=1`, a mark
 * that was not the body's first bytes) cannot be told apart from this order; that name then loses its mark too.
 */
function firstFieldInBody(names: readonly string[]): string | undefined {
  return names.find((name) => !(/^(?:0|[1-9]\d{0,9})$/.test(name) && Number(name) <= 2 ** 32 - 2));
}

/**
 * On Fastify, the fields of a form body (marked by {@link markBody}) as Express reads them: Express's body-parser
 * decodes the bytes with `iconv-lite`, which drops a byte order mark before the first field, and its `qs` parser skips a
 * field without a name (`=x`, `&&`). Nest's Fastify parser (`fast-querystring` on the bytes as UTF-8) kept the mark in
 * the first field's name and the empty name as a field: `\ufeffgrant_type=client_credentials` was a token request on
 * Express and 400 `grant_type is required` on Fastify, and `PUT /auth/me` applied a form on one and refused it (unknown
 * field) on the other. The first name ({@link firstFieldInBody}, not `Object.keys`'s first) loses its mark (its value joins a field of the same name after it, first, as `qs`
 * puts repeated names in an array); fields without a name are dropped; a name that would become `__proto__` keeps its
 * mark (the module refuses it as an unknown field, never a prototype key). Anything else is left as it was.
 */
export function readFormFieldsAsExpress(request: BackOfficeHttpRequestWithBody): void {
  const body = request.body;
  if (markedBodyMediaType(request) !== 'application/x-www-form-urlencoded' || body === null || typeof body !== 'object' || Array.isArray(body)) return;
  const fields = body as Record<string, unknown>;
  const names = Object.keys(fields);
  const first = firstFieldInBody(names) ?? '';
  if (!names.some((name) => name === '' || (name === first && name.startsWith('\ufeff')))) return;
  const unmarked = first.startsWith('\ufeff') && first !== '\ufeff__proto__' ? first.slice(1) : first;
  const read: Record<string, unknown> = Object.create(null);
  for (const name of names) {
    const key = name === first ? unmarked : name;
    if (key === '' || (name !== first && name === unmarked)) continue;
    const value = fields[name];
    const later = name === first && unmarked !== first && Object.hasOwn(fields, unmarked) ? fields[unmarked] : undefined;
    read[key] = later === undefined ? value : [value, ...(Array.isArray(later) ? later : [later])].flat();
  }
  request.body = read;
}
