import { Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { createRequire } from 'node:module';

type TrustFn = (address: string, hop: number) => boolean;

/** The part of an Express application this class reads (so the module needs no Express types). */
interface ExpressSettings {
  get(setting: 'trust proxy fn'): TrustFn | undefined;
  get(setting: 'trust proxy'): unknown;
}

/** The part of ipaddr.js this class calls. */
interface IpAddr {
  parse(text: string): { kind(): 'ipv4' | 'ipv6'; toByteArray(): number[]; prefixLengthFromSubnetMask(): number | null };
}

/**
 * The ipaddr.js that Express's proxy-addr reads `trust proxy` with (resolved from the express that
 * `@nestjs/platform-express` runs, through its proxy-addr), or undefined when one of them cannot be resolved.
 */
function expressIpaddr(): IpAddr | undefined {
  try {
    const chain = ['@nestjs/platform-express', 'express', 'proxy-addr', 'ipaddr.js'];
    return createRequire(__filename)(chain.reduce((from, name) => createRequire(from).resolve(name), __filename)) as IpAddr;
  } catch {
    return undefined;
  }
}

/** proxy-addr's named ranges, as Express expands them in a `trust proxy` list. */
const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = {
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  loopback: ['127.0.0.1/8', '::1/128'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** The IPv4-mapped IPv6 block `::ffff:0:0/96` (first address, and the one after its last): IPv4 addresses are numbered in it. */
const MAPPED = 0xffffn << 32n;
const MAPPED_END = MAPPED + (1n << 32n);

/** The first address of a `trust proxy` entry's range and the one after its last, as 128-bit numbers (IPv4 as IPv4-mapped). */
function rangeBounds(entry: string, ipaddr: IpAddr): bigint[] {
  const slash = entry.lastIndexOf('/');
  const ip = ipaddr.parse(slash === -1 ? entry : entry.slice(0, slash));
  const mask = slash === -1 ? undefined : entry.slice(slash + 1);
  const v4 = ip.kind() === 'ipv4' ? 96 : 0;
  const prefix = mask === undefined ? 128 : v4 + (/^\d+$/.test(mask) ? Number(mask) : ipaddr.parse(mask).prefixLengthFromSubnetMask() ?? 32);
  const size = 1n << BigInt(128 - prefix);
  const first = ip.toByteArray().reduce((value, byte) => (value << 8n) | BigInt(byte), v4 ? 0xffffn : 0n) / size * size;
  return [first, first + size];
}

const ipv6Text = (value: bigint) => Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
const ipv4Text = (value: bigint) => [24n, 16n, 8n, 0n].map((shift) => (value >> shift) & 255n).join('.');

/**
 * True when Express's compiled `trust` function, for the ranges of its `trust proxy` list (an array, or a
 * comma-separated string; named ranges expanded), trusts every IPv4 address or every IPv6 address, such as
 * `['0.0.0.0/1', '128.0.0.0/1']` or `['::/1', '8000::/1']` (Express refuses a prefix of 0: `0.0.0.0/0` cannot be
 * set). A client of that family then picks its own `req.ip`, as with `true`. False when proxy-addr's ipaddr.js cannot
 * be resolved (the `true` check still runs). The list's ranges, read with proxy-addr's
 * own ipaddr.js, cut each family into pieces on which `trust` (a test of membership in those ranges, IPv4 numbered
 * as IPv4-mapped IPv6) cannot change, so calling it at each piece's first address proves coverage, however the
 * proxy-addr in use treats IPv4-mapped ranges (2.0.7 matches an IPv4 client against `::/1`, 2.0.8 does not). A range
 * read wrongly can only cause a needless warning, never hide a trust-all list.
 */
function listTrustsAFamily(setting: unknown, trust: TrustFn): boolean {
  // Any other setting (a hop count, a function) is no list of ranges: proxy-addr did not compile it
  const ipaddr = typeof setting === 'string' || Array.isArray(setting) ? expressIpaddr() : undefined;
  if (!ipaddr) return false;
  const list: unknown[] = typeof setting === 'string' ? setting.split(',').map((entry) => entry.trim()) : (setting as unknown[]);
  const entries = list.flatMap((item: unknown) => (typeof item !== 'string' ? [] : NAMED_RANGES[item] ?? [item]));
  const starts = [0n, MAPPED, MAPPED_END];
  for (const entry of entries) {
    try {
      starts.push(...rangeBounds(entry, ipaddr).filter((start) => start < 1n << 128n));
    } catch {
      // proxy-addr refused it when Express compiled the list: nothing trusted, nothing to cut
    }
  }
  const ipv4 = starts.filter((start) => start >= MAPPED && start < MAPPED_END);
  const ipv6 = starts.filter((start) => start < MAPPED || start >= MAPPED_END);
  const trustsAll = (family: bigint[], text: (value: bigint) => string) => family.every((start) => trust(text(start), 0));
  return trustsAll(ipv4, ipv4Text) || trustsAll(ipv4, ipv6Text) || trustsAll(ipv6, ipv6Text);
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
    if (typeof trust !== 'function') return;
    // An arbitrary peer trusted at any hop: every address in X-Forwarded-For is taken, the client's own first one too.
    const trustsAnyPeer = trust('192.0.2.1', 0) && trust('198.51.100.1', 99) && trust('2001:db8::1', 99);
    if (!trustsAnyPeer && !listTrustsAFamily(express.get('trust proxy'), trust)) return;
    this.logger.warn(
      "Express's 'trust proxy' trusts every hop, so clients can choose their IP address with X-Forwarded-For " +
        '(per-IP rate limits, sessions and audit use it). Trust only your proxies: ' +
        "app.set('trust proxy', 1) behind one proxy (the hop count), or their addresses ('loopback', '10.0.0.0/8').",
    );
  }
}
