import type { IncomingMessage } from 'node:http';

/** Parses the Cookie header (first value of each name wins); malformed pairs are skipped. */
export function readCookies(request: IncomingMessage): Record<string, string> {
  const header = request.headers.cookie;
  const cookies: Record<string, string> = {};
  if (typeof header !== 'string' || header.length > 16_384) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (name in cookies) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      cookies[name] = decodeURIComponent(value);
    } catch {
      // not a cookie of ours
    }
  }
  return cookies;
}

export interface CookieAttributes {
  httpOnly: boolean;
  secure: boolean;
  maxAgeSeconds?: number;
  path?: string;
  /** Default `Strict`; `Lax` only for cookies that must come back on a top-level navigation from another site. */
  sameSite?: 'Strict' | 'Lax';
}

/** A Set-Cookie value (SameSite=Strict unless `sameSite` says otherwise). */
export function serializeCookie(name: string, value: string, attrs: CookieAttributes): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, `Path=${attrs.path ?? '/'}`, `SameSite=${attrs.sameSite ?? 'Strict'}`];
  if (attrs.maxAgeSeconds !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(attrs.maxAgeSeconds))}`);
  if (attrs.maxAgeSeconds === 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  if (attrs.httpOnly) parts.push('HttpOnly');
  if (attrs.secure) parts.push('Secure');
  return parts.join('; ');
}
