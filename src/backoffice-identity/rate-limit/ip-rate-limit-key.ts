import { isIPv4, isIPv6 } from 'node:net';

/**
 * The key under which per-IP rate limits count a client address. IPv4 addresses count one by one. An IPv6 client
 * usually holds a whole /64 (SLAAC, privacy addresses; a host can rotate through 2^64 of them), so an IPv6
 * address counts as its first `ipv6Subnet` bits (default 64): `2001:db8:1:2::/64`. An IPv6 address that embeds the
 * IPv4 address of its client counts as that IPv4 address: IPv4-mapped (`::ffff:192.0.2.1`), IPv4-translated and
 * IPv4-compatible ones, NAT64's well-known prefix (`64:ff9b::192.0.2.1`), 6to4 (`2002:c000:201::/48`, the whole /48
 * of the one IPv4 host 192.0.2.1) and Teredo (`2001:0:4136:e378:8000:63bf:3fff:fdd2` is client 192.0.2.45): a host
 * that holds one IPv4 address can send from any of them, so they share its one budget. A client port beside the address (`192.0.2.1:51234`,
 * `[2001:db8::1]:51234`: proxies such as Azure's add it to `X-Forwarded-For`, and Express's `req.ip` keeps it) is
 * dropped, so that each new connection of a client does not count as a new client. Anything else (no address, a
 * resolver's own label) is kept as is.
 */
export function ipRateLimitKey(ip: string, ipv6Subnet = 64): string {
  const address = parseClientAddress(ip);
  if (address === undefined) return ip;
  return typeof address === 'string' ? address : prefixKey(address, ipv6Subnet);
}

/**
 * The key of the wider IPv6 prefix that an address also counts under (`2001:db8:1:200:0:0:0:0/56` for
 * `2001:db8:1:2ff::9` and 56), or undefined for an IPv4 address (also one embedded in IPv6: IPv4-mapped, 6to4, Teredo, NAT64, ...) or anything that is no
 * address: a client that holds a /56 owns 256 /64s, so per-IP limits bound the /56 as well ({@link ipRateLimitKey}
 * stays the per-client key). The same parsing as {@link ipRateLimitKey} (port, brackets, zone dropped).
 */
export function ipv6AggregateKey(ip: string, prefixLength: number): string | undefined {
  const address = parseClientAddress(ip);
  return Array.isArray(address) ? prefixKey(address, prefixLength) : undefined;
}

/**
 * An IPv4 address (also one an IPv6 address embeds, see {@link embeddedIpv4}) as text, any other IPv6 address as its
 * eight groups, else undefined.
 */
function parseClientAddress(ip: string): string | number[] | undefined {
  const bare = withoutPort(ip.trim()).replace(/^\[(.*)\]$/u, '$1').replace(/%.*$/u, '');
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return undefined;
  const groups = ipv6Groups(bare);
  return embeddedIpv4(groups) ?? groups;
}

/**
 * The IPv4 address that an IPv6 address stands for, when a host that holds that one IPv4 address can use it (and
 * can pick the other bits freely, so each of them must not count as a client of its own), else undefined:
 * - IPv4-mapped `::ffff:0:0/96` (RFC 4291 2.5.5.2), IPv4-translated `::ffff:0:0:0/96` (RFC 2765) and the
 *   deprecated IPv4-compatible `::/96` (RFC 4291 2.5.5.1): the last 32 bits. `::`, `::1` and the rest of `::/104`
 *   (an IPv4 address in 0.0.0.0/8, no host's address) stay IPv6;
 * - NAT64's well-known prefix `64:ff9b::/96` (RFC 6052 2.1): the last 32 bits. A network-specific prefix (the
 *   local-use `64:ff9b:1::/48` of RFC 8215 and others) places the address where its operator chose, so it stays IPv6;
 * - 6to4 `2002::/16` (RFC 3056): `2002:WWXX:YYZZ::/48` is the /48 of the one IPv4 host W.X.Y.Z;
 * - Teredo `2001:0::/32` (RFC 4380 4): the client's public IPv4 address is the last 32 bits XOR 0xffffffff (server,
 *   flags and obfuscated port in between are the client's to choose).
 */
function embeddedIpv4(groups: number[]): string | undefined {
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zeros(0, 5) && groups[5] === 0xffff) return ipv4Text(groups[6], groups[7]);
  if (zeros(0, 4) && groups[4] === 0xffff && groups[5] === 0) return ipv4Text(groups[6], groups[7]);
  if (zeros(0, 6) && groups[6] >= 0x100) return ipv4Text(groups[6], groups[7]);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)) return ipv4Text(groups[6], groups[7]);
  if (groups[0] === 0x2002) return ipv4Text(groups[1], groups[2]);
  if (groups[0] === 0x2001 && groups[1] === 0) return ipv4Text(groups[6] ^ 0xffff, groups[7] ^ 0xffff);
  return undefined;
}

/** The IPv4 address held in two 16-bit groups, as dotted text. */
function ipv4Text(high: number, low: number): string {
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/** The first `bits` bits of an IPv6 address as `group:...:group/bits`. */
function prefixKey(groups: number[], bits: number): string {
  const masked = groups.map((group, i) => {
    const kept = Math.min(16, Math.max(0, bits - 16 * i));
    return kept === 0 ? 0 : group & ((0xffff << (16 - kept)) & 0xffff);
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${bits}`;
}

/** `address` without a trailing `:port` after an IPv4 address or a bracketed IPv6 one; anything else as it is. */
function withoutPort(address: string): string {
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/u.exec(address);
  if (v4 && isIPv4(v4[1])) return v4[1];
  const v6 = /^\[([^\]]+)\]:\d{1,5}$/u.exec(address);
  return v6 ? `[${v6[1]}]` : address;
}

/** The eight 16-bit groups of a valid IPv6 address (with `::` and a trailing dotted IPv4 part expanded). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/u.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const front = head ? head.split(':') : [];
  const back = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - front.length - back.length).fill('0');
  return [...front, ...fill, ...back].map((g) => parseInt(g, 16));
}
