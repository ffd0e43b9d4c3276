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

  it('ipv6AggregateKey: the wider prefix of an IPv6 address (every /64 of a /48 alike), none for IPv4, IPv4-mapped or a label', () => {
    const key = ipv6AggregateKey('2001:db8:abcd:1::1', 48);
    expect(key).toBe('2001:db8:abcd:0:0:0:0:0/48');
    for (const ip of ['2001:db8:abcd:ffff::9', '2001:DB8:ABCD:12::', '[2001:db8:abcd:1:2:3:4:5]:443', '2001:db8:abcd::1%eth0']) expect(ipv6AggregateKey(ip, 48), ip).toBe(key);
    expect(ipv6AggregateKey('2001:db8:abce:1::1', 48)).not.toBe(key);
    expect(ipv6AggregateKey('2001:db8:abcd:12ff::1', 56)).toBe('2001:db8:abcd:1200:0:0:0:0/56');
    for (const ip of ['192.0.2.7', '192.0.2.7:51234', '::ffff:192.0.2.7', 'unknown', 'not:an:address']) expect(ipv6AggregateKey(ip, 48), ip).toBeUndefined();
  });
});
