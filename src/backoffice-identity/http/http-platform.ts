import { Inject, Injectable, RequestMethod } from '@nestjs/common';
import { type ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import { isRouteExcluded } from '@nestjs/core/router/utils/index.js';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/**
 * The request of either Nest HTTP platform: Express's `Request` (a Node `IncomingMessage`) or Fastify's
 * `FastifyRequest` (which wraps one as `raw`). Both carry these fields, so the module reads only these.
 */
export interface BackOfficeHttpRequest {
  headers: IncomingHttpHeaders;
  method?: string;
  body?: unknown;
  /** The client address as the platform resolves it (honours Express `trust proxy` / Fastify `trustProxy`). */
  ip?: string;
  url?: string;
  /** Fastify only: the Node request. */
  raw?: IncomingMessage;
  /** Express (and middleware under Fastify): the URL before routing rewrote it. */
  originalUrl?: string;
  socket?: { remoteAddress?: string };
}

/** The response of either platform (Express `Response`, Fastify `FastifyReply`): opaque, written through {@link BackOfficeHttpPlatform}. */
export type BackOfficeHttpResponse = object;

/** Attributes of the module's cookies (always `SameSite=Strict`, path `/`). */
export interface BackOfficeCookieAttributes {
  httpOnly: boolean;
  secure: boolean;
  /** Lifetime in seconds; 0 expires the cookie now; omitted: a browser-session cookie. */
  maxAgeSeconds?: number;
  /** Default `/`. */
  path?: string;
  /** Default `strict`; `lax` only for a cookie that must come back on a top-level navigation from another site. */
  sameSite?: 'strict' | 'lax';
  /** Omitted (the default): a host-only cookie. Only to expire a cookie a sibling subdomain set for a parent domain. */
  domain?: string;
}

/** Cookie headers longer than this are not parsed (no cookie of ours is anywhere near it). */
const MAX_COOKIE_HEADER = 16_384;

/**
 * A request's Cookie header (undefined: none, or too long to parse), and what was read from it so far: the values
 * (the first of a name wins) and the names it repeats, each worked out at most once per request.
 */
interface RequestCookieHeader {
  header: string | undefined;
  values?: Record<string, string | undefined>;
  repeated?: ReadonlySet<string>;
}
/** By Node request, so Fastify's request and its `raw` (which the middleware sees) share one parse. */
const cookieHeaders = new WeakMap<object, RequestCookieHeader>();

/** RFC 6265 allows a cookie value in double quotes; a value that is not valid percent-encoding is dropped. */
function decodeCookieValue(value: string): string | undefined {
  if (value.indexOf('%') === -1 && value.charCodeAt(0) !== 34 /* " */) return value; // nothing to decode (our tokens)
  const unquoted = value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  try {
    return decodeURIComponent(unquoted);
  } catch {
    return undefined;
  }
}

/** The value of a request header, or undefined (a repeated header that Node keeps as a list counts as absent). */
export function requestHeader(request: BackOfficeHttpRequest, name: string): string | undefined {
  const value = request.headers[name.toLowerCase()];
  return typeof value === 'string' ? value : undefined;
}

/** The request's Cookie header and what was parsed of it, kept for the rest of the request. */
function cookieHeaderOf(request: BackOfficeHttpRequest): RequestCookieHeader {
  const key = request.raw ?? request;
  let entry = cookieHeaders.get(key);
  if (!entry) {
    const header = requestHeader(request, 'cookie');
    entry = { header: header !== undefined && header.length <= MAX_COOKIE_HEADER ? header : undefined };
    cookieHeaders.set(key, entry);
  }
  return entry;
}

/** The names the request's Cookie header carries more than once, found in one pass over it (once per request). */
function repeatedNames(request: BackOfficeHttpRequest): ReadonlySet<string> {
  const entry = cookieHeaderOf(request);
  if (entry.repeated) return entry.repeated;
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const pair of entry.header?.split(';') ?? []) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    if (seen.has(name)) repeated.add(name);
    else seen.add(name);
  }
  return (entry.repeated = repeated);
}

/** The cookies of a request, parsed once (with the `cookie` package; the first value of a name wins). */
export function requestCookies(request: BackOfficeHttpRequest): Record<string, string | undefined> {
  const entry = cookieHeaderOf(request);
  return (entry.values ??= entry.header === undefined ? {} : parseCookie(entry.header, { decode: decodeCookieValue }));
}

/**
 * The value of cookie `name` when the request sends it exactly once, else undefined: a repeated name picks no value, since
 * which one the browser meant cannot be told: a browser sends two cookies of one name when a sibling subdomain set
 * one for the parent domain (cookie tossing), the one with the longer `Path` first, so "the first wins" would let that
 * site choose the value.
 */
export function requestCookieOnce(request: BackOfficeHttpRequest, name: string): string | undefined {
  return repeatedNames(request).has(name) ? undefined : requestCookies(request)[name];
}

/** Which of `names` the request's Cookie header carries more than once (from the request's one parse). */
export function repeatedRequestCookies(request: BackOfficeHttpRequest, names: readonly string[]): string[] {
  const repeated = repeatedNames(request);
  return repeated.size === 0 ? [] : names.filter((name) => repeated.has(name));
}

/** The scheme and authority of an absolute-form request target (`GET http://host/backoffice/... HTTP/1.1`). */
const ABSOLUTE_FORM_ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** The request target as the client sent it (`originalUrl ?? url`: path and query, percent-escapes kept). */
export function requestTarget(request: BackOfficeHttpRequest): string {
  const node = request.raw ?? request;
  return (node as BackOfficeHttpRequest).originalUrl ?? node.url ?? '';
}

/**
 * The path of a request target as both routers end it: without an absolute-form target's scheme and host, and up to
 * the first `?` or `#` (Express's URL parser and Fastify's router both stop the path at either: `/backoffice#x` is
 * routed as `/backoffice`). The module's middleware refuses a target with a raw `#` under the route prefix.
 */
function targetPath(url: string): string {
  const target = url.replace(ABSOLUTE_FORM_ORIGIN, '');
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}

/** The request path as the client sent it ({@link targetPath}: no query, fragment, nor an absolute-form target's scheme and host). */
export function requestPath(request: BackOfficeHttpRequest): string {
  return targetPath(requestTarget(request));
}

/** The query string of the request as the client sent it (after `?`, percent-escapes kept), or undefined without one. */
export function requestRawQuery(request: BackOfficeHttpRequest): string | undefined {
  const url = requestTarget(request);
  const query = url.indexOf('?');
  return query === -1 ? undefined : url.slice(query + 1);
}

/**
 * The path of a request URL as some router may match it against the module's routes: without the scheme and host
 * of an absolute-form target (RFC 9112 3.2.2, which both platforms route by its path), the query and a raw `#` with
 * what follows it ({@link targetPath}), with its percent-escapes decoded (Fastify's router decodes `/%62ackoffice` to
 * `/backoffice` before matching) and in lower case (Express matches routes case-insensitively by default). Tells whether an answer belongs to the module, so
 * that every spelling of a path that reaches one of its routes gets the module's headers and error shape.
 */
export function routedPath(url: string): string {
  return targetPath(url).replace(/(?:%[0-9A-Fa-f]{2})+/g, decodeEscapes).toLowerCase();
}

/** Nest's global prefix as the host wrote it, without leading or trailing slashes (`''`: none). */
function trimmedGlobalPrefix(globalPrefix: string): string {
  return globalPrefix.replace(/^\/+|\/+$/g, '');
}

/** `path` (`/...`) below Nest's global prefix `globalPrefix` (`''`: none), in the case given. */
function withGlobalPrefix(globalPrefix: string, path: string): string {
  const global = trimmedGlobalPrefix(globalPrefix);
  return `${global ? `/${global}` : ''}${path}`;
}

/** True when the host's `setGlobalPrefix(prefix, { exclude })` leaves the route `method path` out of the prefix. */
function excludedFromGlobalPrefix(appConfig: ApplicationConfig | undefined, path: string, method: RequestMethod): boolean {
  const exclude = appConfig?.getGlobalPrefixOptions().exclude;
  return Array.isArray(exclude) && exclude.length > 0 && isRouteExcluded(exclude, path, method);
}

/**
 * Where the route `method path` (`/<routePrefix>...`) is served: below Nest's global prefix (when the host set one)
 * unless the host's `exclude` leaves it out, in the case given (a redirect target; {@link moduleBasePath} is the
 * lower-case form to compare with {@link routedPath}). Read it once the host set its prefix, not in a constructor.
 */
export function servedRoutePath(appConfig: ApplicationConfig | undefined, path: string, method = RequestMethod.GET): string {
  return excludedFromGlobalPrefix(appConfig, path, method) ? path : withGlobalPrefix(appConfig?.getGlobalPrefix() ?? '', path);
}

/**
 * Where the module's routes start: `/<global prefix>/<routePrefix>` (Nest's global prefix, when the host set one),
 * in lower case, to compare with {@link routedPath}.
 */
export function moduleBasePath(routePrefix: string, globalPrefix = ''): string {
  return withGlobalPrefix(globalPrefix, `/${routePrefix}`).toLowerCase();
}

/**
 * Paths that stand for the module's routes (pages, assets, JSON routes, OIDC callbacks) when telling whether the
 * host's `setGlobalPrefix(prefix, { exclude })` leaves them out of the prefix.
 */
const MODULE_ROUTE_SAMPLES: ReadonlyArray<[RequestMethod, string]> = [
  [RequestMethod.GET, ''],
  [RequestMethod.GET, '/account'],
  [RequestMethod.GET, '/assets/session.js'],
  [RequestMethod.POST, '/auth/login'],
  [RequestMethod.GET, '/auth/me'],
  [RequestMethod.GET, '/auth/external/provider/callback'],
  [RequestMethod.GET, '/users'],
];

/**
 * How Nest's global prefix applies to the module's routes: `prefix` is the one they are served under (`''` without
 * a global prefix, or when the host excluded all of them with `setGlobalPrefix(prefix, { exclude:
 * ['<routePrefix>{/*path}'] })`); `partly` is true when the exclusion covers only some of them. Read it once the
 * host set its prefix (at a request or at `onApplicationBootstrap`), not in a constructor.
 */
export function moduleGlobalPrefix(appConfig: ApplicationConfig | undefined, routePrefix: string): { prefix: string; partly: boolean } {
  const global = trimmedGlobalPrefix(appConfig?.getGlobalPrefix() ?? '');
  if (!global) return { prefix: '', partly: false };
  const excluded = MODULE_ROUTE_SAMPLES.filter(([method, path]) => excludedFromGlobalPrefix(appConfig, `/${routePrefix}${path}`, method)).length;
  if (excluded === 0) return { prefix: global, partly: false };
  if (excluded === MODULE_ROUTE_SAMPLES.length) return { prefix: '', partly: false };
  return { prefix: global, partly: true };
}

/** True when `url`, as the routers match it ({@link routedPath}), is `base` (from {@link moduleBasePath}) or below it. */
export function isUnderBasePath(url: string, base: string): boolean {
  const path = routedPath(url);
  return path === base || path.startsWith(`${base}/`);
}

/** Decodes a run of percent-escapes; one that is not valid UTF-8 stays as it is (the routers refuse it). */
function decodeEscapes(escapes: string): string {
  try {
    return decodeURIComponent(escapes);
  } catch {
    return escapes;
  }
}

/** A `Set-Cookie` value (`SameSite=Strict` and `Path=/` unless the attributes say otherwise). */
export function serializeCookie(name: string, value: string, attrs: BackOfficeCookieAttributes): string {
  return stringifySetCookie(name, value, {
    path: attrs.path ?? '/',
    sameSite: attrs.sameSite ?? 'strict',
    httpOnly: attrs.httpOnly,
    secure: attrs.secure,
    ...(attrs.domain === undefined ? {} : { domain: attrs.domain }),
    ...(attrs.maxAgeSeconds === undefined ? {} : { maxAge: Math.max(0, Math.floor(attrs.maxAgeSeconds)) }),
    ...(attrs.maxAgeSeconds === 0 ? { expires: new Date(0) } : {}),
  });
}

/**
 * The one place that knows there is more than one HTTP platform: writes responses (status, headers, cookies,
 * JSON bodies) through the application's Nest HTTP adapter, so Express and Fastify behave alike. Requests
 * are read through their common fields (see {@link BackOfficeHttpRequest}).
 */
@Injectable()
export class BackOfficeHttpPlatform {
  constructor(@Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost) {}

  private get adapter() {
    const adapter = this.adapterHost.httpAdapter;
    if (!adapter) throw new Error('BackOfficeHttpPlatform: the application has no HTTP adapter');
    return adapter;
  }

  /** Adds a `Set-Cookie` header, keeping the ones already set. */
  setCookie(response: BackOfficeHttpResponse, name: string, value: string, attrs: BackOfficeCookieAttributes): void {
    this.appendHeader(response, 'Set-Cookie', serializeCookie(name, value, attrs));
  }

  /** Adds a header line, keeping the ones already set (also `Set-Cookie` lines a middleware put on the Node response). */
  appendHeader(response: BackOfficeHttpResponse, name: string, value: string): void {
    this.adapter.appendHeader(response, name, value);
  }

  setHeader(response: BackOfficeHttpResponse, name: string, value: string): void {
    this.adapter.setHeader(response, name, value);
  }

  /** A header set earlier (Express: the response's; Fastify: the reply's, else the Node response's), or undefined. */
  getHeader(response: BackOfficeHttpResponse, name: string): unknown {
    return this.adapter.getHeader(response, name);
  }

  /** Removes a header set earlier (Express's response and Fastify's reply both have `removeHeader`). */
  removeHeader(response: BackOfficeHttpResponse, name: string): void {
    (response as { removeHeader?: (name: string) => unknown }).removeHeader?.(name);
  }

  headersSent(response: BackOfficeHttpResponse): boolean {
    return Boolean(this.adapter.isHeadersSent(response));
  }

  /** Sends `body` as JSON with `status`. */
  sendJson(response: BackOfficeHttpResponse, status: number, body: object): void {
    this.adapter.reply(response, body, status);
  }
}
