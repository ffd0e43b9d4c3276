import { ipRateLimitKey, ipv6AggregateKey } from '../../src/backoffice-identity/rate-limit/ip-rate-limit-key.js';

describe('ipRateLimitKey: the client key of per-IP rate limits', () => {
  it('ASVS 4.0 2.2.1: every address of one IPv6 /64 gives one key, whatever its spelling', () => {
    const key = '2001:db8:1:2:0:0:0:0/64';
    for (const ip of ['2001:db8:1:2::1', '2001:DB8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0:0:0:7', '[2001:db8:1:2::9]', '2001:db8:1:2::1%eth0']) {
      expect(ipRateLimitKey(ip), ip).toBe(key);
    }
    expect(ipRateLimitKey('2001:db8:1:3::1')).not.toBe(key);
    expect(ipRateLimitKey('::1')).toBe('0:0:0:0:0:0:0:0/64');
    expect(ipRateLimitKey('2001:db8::1.2.3.4')).toBe('2001:db8:0:0:0:0:0:0/64');
  });

  it('other prefix lengths mask the right bits; 128 keeps the whole address', () => {
    expect(ipRateLimitKey('2001:db8:abcd:12ff::1', 56)).toBe('2001:db8:abcd:1200:0:0:0:0/56');
    expect(ipRateLimitKey('2001:db8:abcd:12ff::1', 48)).toBe('2001:db8:abcd:0:0:0:0:0/48');
    expect(ipRateLimitKey('2001:db8:abcd:12ff::1', 128)).toBe('2001:db8:abcd:12ff:0:0:0:1/128');
  });

  it('IPv4 counts one by one; an IPv4-mapped IPv6 address counts as its IPv4 address; other text is kept', () => {
    expect(ipRateLimitKey('192.0.2.7')).toBe('192.0.2.7');
    expect(ipRateLimitKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(ipRateLimitKey('::FFFF:c000:207')).toBe('192.0.2.7');
    expect(ipRateLimitKey('unknown')).toBe('unknown');
    expect(ipRateLimitKey('not:an:address')).toBe('not:an:address');
  });

  it('ASVS 4.0 2.2.1: a client port beside the address (Azure\'s X-Forwarded-For "203.0.113.9:51234", which Express\'s req.ip keeps) is dropped, so a new connection is not a new client', () => {
    expect(ipRateLimitKey('203.0.113.9:51234')).toBe('203.0.113.9');
    expect(ipRateLimitKey('203.0.113.9:1')).toBe(ipRateLimitKey('203.0.113.9:65535'));
    expect(ipRateLimitKey('[2001:db8:1:2::9]:51234')).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(ipRateLimitKey('[::ffff:192.0.2.7]:443')).toBe('192.0.2.7');
    // Not an address with a port: kept as it is.
    expect(ipRateLimitKey('203.0.113.9:port')).toBe('203.0.113.9:port');
    expect(ipRateLimitKey('host.example:80')).toBe('host.example:80');
  });

  it('ASVS 4.0 2.2.1: a 6to4 address (2002::/16: the /48 of one IPv4 host) counts as its embedded IPv4 address, whatever /64 or spelling, with no IPv6 aggregate', () => {
    // 2002:c000:0207::/48 is the 6to4 prefix of 192.0.2.7: every /64 and address in it is that one host.
    for (const ip of ['2002:c000:207::1', '2002:C000:0207:ffff::9', '2002:c000:207:1:2:3:4:5', '[2002:c000:207:12::1]:443', '2002:c000:207::1%eth0']) {
      expect(ipRateLimitKey(ip), ip).toBe('192.0.2.7');
      expect(ipRateLimitKey(ip, 128), ip).toBe('192.0.2.7');
      expect(ipv6AggregateKey(ip, 56), ip).toBeUndefined();
      expect(ipv6AggregateKey(ip, 48), ip).toBeUndefined();
    }
    expect(ipRateLimitKey('2002:cb00:7109::1')).toBe('203.0.113.9');
    expect(ipRateLimitKey('2002:c000:208::1')).toBe('192.0.2.8');
    // Only 2002::/16 is 6to4: its neighbours are ordinary IPv6.
    expect(ipRateLimitKey('2003:c000:207::1')).toBe('2003:c000:207:0:0:0:0:0/64');
    expect(ipRateLimitKey('2001:c000:207::1')).toBe('2001:c000:207:0:0:0:0:0/64');
  });

  it('ASVS 4.0 2.2.1: a Teredo address (2001:0::/32, RFC 4380) counts as its client\'s public IPv4 address (last 32 bits XOR 0xffffffff), whatever server, flags, port or spelling', () => {
    // RFC 4380 section 4: server 65.54.227.120, cone flag, port 40000, client 192.0.2.45.
    expect(ipRateLimitKey('2001:0000:4136:e378:8000:63bf:3fff:fdd2')).toBe('192.0.2.45');
    for (const ip of ['2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001::4136:E378:8000:63BF:3FFF:FDD2', '2001:0:102:304:0:ffff:3fff:fdd2', '2001::3fff:fdd2', '[2001:0:4136:e378:8000:63bf:3fff:fdd2]:443', '2001:0:4136:e378:8000:63bf:63.255.253.210']) {
      expect(ipRateLimitKey(ip), ip).toBe('192.0.2.45');
      expect(ipRateLimitKey(ip, 128), ip).toBe('192.0.2.45');
      expect(ipv6AggregateKey(ip, 56), ip).toBeUndefined();
    }
    // Client 203.0.113.9 (cb00:7109, obfuscated 34ff:8ef6) shares its key with the plain IPv4 address.
    expect(ipRateLimitKey('2001:0:4136:e378:0:1234:34ff:8ef6')).toBe(ipRateLimitKey('203.0.113.9'));
    // Only 2001:0::/32 is Teredo: 2001:1::/32 and 2001:db8::/32 are ordinary IPv6.
    expect(ipRateLimitKey('2001:1:4136:e378:8000:63bf:3fff:fdd2')).toBe('2001:1:4136:e378:0:0:0:0/64');
    expect(ipRateLimitKey('2001:db8::3fff:fdd2')).toBe('2001:db8:0:0:0:0:0:0/64');
  });

  it('ASVS 4.0 2.2.1: the NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) counts as the IPv4 address in its last 32 bits', () => {
    // RFC 6052 section 2.4: 192.0.2.33 under 64:ff9b::/96 is 64:ff9b::192.0.2.33 (64:ff9b::c000:221).
    for (const ip of ['64:ff9b::192.0.2.33', '64:ff9b::c000:221', '0064:FF9B:0000:0000:0000:0000:C000:0221', '[64:ff9b::c000:221]:51234']) {
      expect(ipRateLimitKey(ip), ip).toBe('192.0.2.33');
      expect(ipv6AggregateKey(ip, 56), ip).toBeUndefined();
    }
    // Outside the /96 (the local-use 64:ff9b:1::/48 of RFC 8215 embeds where its operator chose): ordinary IPv6.
    expect(ipRateLimitKey('64:ff9b:1::c000:221')).toBe('64:ff9b:1:0:0:0:0:0/64');
    expect(ipRateLimitKey('64:ff9b::1:c000:221')).toBe('64:ff9b:0:0:0:0:0:0/64');
  });

  it('ASVS 4.0 2.2.1: IPv4-compatible (::/96, RFC 4291 2.5.5.1) and IPv4-translated (::ffff:0:0/96, RFC 2765) addresses count as their IPv4 address; :: and ::1 stay IPv6', () => {
    expect(ipRateLimitKey('::192.0.2.7')).toBe('192.0.2.7');
    expect(ipRateLimitKey('::c000:207')).toBe('192.0.2.7');
    expect(ipRateLimitKey('[::192.0.2.7]:443')).toBe('192.0.2.7');
    expect(ipRateLimitKey('::ffff:0:192.0.2.7')).toBe('192.0.2.7');
    expect(ipRateLimitKey('::ffff:0:c000:207')).toBe('192.0.2.7');
    for (const ip of ['::192.0.2.7', '::ffff:0:192.0.2.7']) expect(ipv6AggregateKey(ip, 56), ip).toBeUndefined();
    // Loopback, unspecified and the rest of 0.0.0.0/8 (no host's address) are not read as IPv4.
    expect(ipRateLimitKey('::1')).toBe('0:0:0:0:0:0:0:0/64');
    expect(ipRateLimitKey('::')).toBe('0:0:0:0:0:0:0:0/64');
    expect(ipRateLimitKey('::ff:ffff')).toBe('0:0:0:0:0:0:0:0/64');
    expect(ipv6AggregateKey('::1', 56)).toBe('0:0:0:0:0:0:0:0/56');
  });

  it('ipv6AggregateKey: the wider prefix of an IPv6 address (every /64 of a /48 alike), none for IPv4, IPv4-mapped or a label', () => {
    const key = ipv6AggregateKey('2001:db8:abcd:1::1', 48);
    expect(key).toBe('2001:db8:abcd:0:0:0:0:0/48');
    for (const ip of ['2001:db8:abcd:ffff::9', '2001:DB8:ABCD:12::', '[2001:db8:abcd:1:2:3:4:5]:443', '2001:db8:abcd::1%eth0']) expect(ipv6AggregateKey(ip, 48), ip).toBe(key);
    expect(ipv6AggregateKey('2001:db8:abce:1::1', 48)).not.toBe(key);
    expect(ipv6AggregateKey('2001:db8:abcd:12ff::1', 56)).toBe('2001:db8:abcd:1200:0:0:0:0/56');
    for (const ip of ['192.0.2.7', '192.0.2.7:51234', '::ffff:192.0.2.7', 'unknown', 'not:an:address']) expect(ipv6AggregateKey(ip, 48), ip).toBeUndefined();
  });
});
