import { Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { isIPv6 } from 'node:net';

/** The part of an Express application this class reads (so the module needs no Express types). */
interface ExpressSettings {
  get(setting: 'trust proxy fn'): ((address: string, hop: number) => boolean) | undefined;
  get(setting: 'trust proxy'): unknown;
}

/** proxy-addr's named ranges, as Express expands them in a `trust proxy` list. */
const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = {
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  loopback: ['127.0.0.1/8', '::1/128'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** An address range as numbers: first and last address, both included. */
type Interval = readonly [first: bigint, last: bigint];

/** The IPv4-mapped IPv6 block `::ffff:0:0/96`: proxy-addr reads an address in it as IPv4, never against an IPv6 range. */
const IPV4_MAPPED: Interval = [0xffffn << 32n, (0xffffn << 32n) | 0xffffffffn];

/** One part of an IPv4 address as ipaddr.js (proxy-addr's parser) writes it: decimal, octal (`0` first) or hexadecimal (`0x`). */
const IPV4_PART = '(0?\\d+|0x[a-f0-9]+)';
const IPV4_FOUR_PARTS = new RegExp(`^${IPV4_PART}\\.${IPV4_PART}\\.${IPV4_PART}\\.${IPV4_PART}$`, 'i');
const IPV4_ONE_PART = new RegExp(`^${IPV4_PART}$`, 'i');

/** A part's number as ipaddr.js reads it (`010` is 8, `0x10` is 16). */
function ipv4Part(text: string): number {
  return text[0] === '0' && text[1] !== 'x' ? parseInt(text, 8) : parseInt(text);
}

/**
 * An IPv4 address as a number, or undefined, read as proxy-addr reads it (ipaddr.js): four parts, or one whole
 * number (`2147483648` is `128.0.0.0`), each part decimal, octal or hexadecimal; `node:net`'s `isIPv4` takes only
 * four decimal parts, so a list written otherwise would slip past the check.
 */
function ipv4Value(text: string): bigint | undefined {
  const four = IPV4_FOUR_PARTS.exec(text);
  if (four) {
    const octets = four.slice(1, 5).map(ipv4Part);
    return octets.every((octet) => octet <= 255) ? octets.reduce((value, octet) => (value << 8n) | BigInt(octet), 0n) : undefined;
  }
  const one = IPV4_ONE_PART.exec(text);
  const value = one ? ipv4Part(one[1]!) : undefined;
  return value !== undefined && value <= 0xffffffff ? BigInt(value) : undefined;
}

/** An IPv6 address (a zone and a dotted-quad tail allowed) as a number, or undefined. */
function ipv6Value(text: string): bigint | undefined {
  let address = text.replace(/%.*$/, '');
  if (!isIPv6(address)) return undefined;
  const tail = /[^:]*\.[^:]*$/.exec(address);
  if (tail) {
    const v4 = ipv4Value(tail[0]);
    if (v4 === undefined) return undefined;
    address = `${address.slice(0, tail.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = address.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const written = [...groups(head), ...groups(rest)];
  const all = rest === undefined ? written : [...groups(head), ...Array<string>(8 - written.length).fill('0'), ...groups(rest)];
  return all.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** The prefix length of a contiguous IPv4 netmask (`255.255.0.0`: 16), or undefined. */
function netmaskLength(text: string): number | undefined {
  const mask = ipv4Value(text);
  if (mask === undefined) return undefined;
  const bits = mask.toString(2).padStart(32, '0');
  return /^1*0*$/.test(bits) ? bits.replace(/0+$/, '').length : undefined;
}

/** The addresses of `value` (`bits` wide) that share its first `prefix` bits. */
function cidr(value: bigint, prefix: number, bits: number): Interval {
  const size = 1n << BigInt(bits - prefix);
  const first = value - (value % size);
  return [first, first + size - 1n];
}

/**
 * The address ranges one entry of a `trust proxy` list trusts, read as proxy-addr reads it (`10.0.0.0/8`,
 * `10.0.0.0/255.0.0.0`, `::1`, `::ffff:10.0.0.0/104`): an IPv4-mapped IPv6 address alone, or a range of them of
 * prefix 96 or more, is trusted as IPv4; any other IPv4-mapped range trusts nothing. An entry it would have refused
 * trusts nothing.
 */
function trustedRange(entry: string): { ipv4?: Interval; ipv6?: Interval } {
  const slash = entry.lastIndexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const written = slash === -1 ? undefined : entry.slice(slash + 1);
  const v4 = ipv4Value(address);
  if (v4 !== undefined) {
    const prefix = written === undefined ? 32 : /^\d+$/.test(written) ? Number(written) : netmaskLength(written);
    return prefix !== undefined && prefix > 0 && prefix <= 32 ? { ipv4: cidr(v4, prefix, 32) } : {};
  }
  const v6 = ipv6Value(address);
  if (v6 === undefined) return {};
  const prefix = written === undefined ? 128 : /^\d+$/.test(written) ? Number(written) : undefined;
  if (prefix === undefined || prefix <= 0 || prefix > 128) return {};
  if (v6 >> 32n !== 0xffffn) return { ipv6: cidr(v6, prefix, 128) };
  return prefix >= 96 ? { ipv4: cidr(v6 & 0xffffffffn, prefix - 96, 32) } : {};
}

/** True when `intervals` together hold every number from 0 to `last` (merged in order of their first numbers). */
function coversAll(intervals: Interval[], last: bigint): boolean {
  let next = 0n;
  for (const [first, end] of [...intervals].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (first > next) return false;
    if (end + 1n > next) next = end + 1n;
  }
  return next > last;
}

/**
 * True when the ranges of an Express `trust proxy` list (an array, or a comma-separated string; named ranges
 * expanded) together hold every IPv4 address or every IPv6 address, such as `['0.0.0.0/1', '128.0.0.0/1']` or
 * `['::/1', '8000::/1']` (Express refuses a prefix of 0: `0.0.0.0/0` cannot be set). A client of that family then
 * picks its own `req.ip`, as with `true`.
 */
function listTrustsAFamily(setting: unknown): boolean {
  const list = typeof setting === 'string' ? setting.split(',').map((entry) => entry.trim()) : Array.isArray(setting) ? setting : [];
  const ipv4: Interval[] = [];
  const ipv6: Interval[] = [IPV4_MAPPED];
  for (const entry of list.flatMap((item: unknown) => (typeof item !== 'string' ? [] : NAMED_RANGES[item] ?? [item]))) {
    const range = trustedRange(entry);
    if (range.ipv4) ipv4.push(range.ipv4);
    if (range.ipv6) ipv6.push(range.ipv6);
  }
  return coversAll(ipv4, (1n << 32n) - 1n) || coversAll(ipv6, (1n << 128n) - 1n);
}

/**
 * Warns at start-up when Express trusts every proxy hop (`app.set('trust proxy', true)`, a hop count no chain
 * reaches, or a list of ranges that together hold every IPv4 or every IPv6 address: {@link listTrustsAFamily}):
 * `req.ip` is then the first `X-Forwarded-For` entry, which the client writes itself (a proxy appends the address it
 * saw after it), so per-IP rate limits, sessions and the audit trail get an address of the client's
 * choosing. A warning and not an error: the host owns the setting. Read at `onApplicationBootstrap`, after the host
 * set it. Fastify does not expose its `trustProxy` option, so there the README's advice stands alone.
 */
@Injectable()
export class BackOfficeTrustProxyCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('BackOfficeIdentity');

  constructor(@Optional() @Inject(HttpAdapterHost) private readonly adapterHost?: HttpAdapterHost) {}

  onApplicationBootstrap(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter || adapter.getType() !== 'express') return;
    const express = adapter.getInstance() as ExpressSettings;
    const trust = express.get('trust proxy fn');
    // An arbitrary peer trusted at any hop: every address in X-Forwarded-For is taken, the client's own first one too.
    const trustsAnyPeer = typeof trust === 'function' && trust('192.0.2.1', 0) && trust('198.51.100.1', 99) && trust('2001:db8::1', 99);
    if (!trustsAnyPeer && !listTrustsAFamily(express.get('trust proxy'))) return;
    this.logger.warn(
      "Express's 'trust proxy' trusts every hop, so clients can choose their IP address with X-Forwarded-For " +
        '(per-IP rate limits, sessions and audit use it). Trust only your proxies: ' +
        "app.set('trust proxy', 1) behind one proxy (the hop count), or their addresses ('loopback', '10.0.0.0/8').",
    );
  }
}
