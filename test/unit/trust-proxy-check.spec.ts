import { Logger } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import express from 'express';
import ipaddr from 'ipaddr.js';
import { BackOfficeTrustProxyCheck } from '../../src/backoffice-identity/http/trust-proxy-check.js';

/**
 * Whether the start-up check warns for an Express app whose `trust proxy` is `setting`, compiled by the installed
 * proxy-addr or, given `trustFn`, by another version of it.
 */
function warns(setting: unknown, trustFn?: (address: string, hop: number) => boolean, Check = BackOfficeTrustProxyCheck): boolean {
  const app = express();
  app.set('trust proxy', setting);
  if (trustFn) app.set('trust proxy fn', trustFn);
  const adapterHost = { httpAdapter: { getType: () => 'express', getInstance: () => app } } as unknown as HttpAdapterHost;
  const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  try {
    new Check(adapterHost).onApplicationBootstrap();
    return warn.mock.calls.some(([message]) => /trusts every hop/.test(String(message)));
  } finally {
    warn.mockRestore();
  }
}

describe('BackOfficeTrustProxyCheck: the start-up warning about an Express `trust proxy` that trusts every hop', () => {
  it.each<[string, unknown]>([
    ['true', true],
    ['a hop count no chain reaches', 1000],
    ['a function trusting every address', () => true],
    // 0.0.0.0/0 and ::/0 are refused by Express (proxy-addr: a prefix of 0 is invalid), so a trust-all list is written in parts
    ['every IPv4 address in two halves', ['0.0.0.0/1', '128.0.0.0/1']],
    ['every IPv4 address in two halves, as one string', '0.0.0.0/1, 128.0.0.0/1'],
    ['every IPv4 address with netmasks', ['0.0.0.0/128.0.0.0', '128.0.0.0/192.0.0.0', '192.0.0.0/192.0.0.0']],
    ['every IPv4 address in overlapping ranges, host bits set', ['10.0.0.1/1', '127.0.0.1/8', '128.0.0.0/2', '160.0.0.0/3', '192.0.0.0/2']],
    ['every IPv4 address among named ranges', ['loopback', '0.0.0.0/1', '128.0.0.0/1']],
    ['every IPv4 address as IPv4-mapped IPv6', ['::ffff:0:0/96']],
    // proxy-addr reads IPv4 as ipaddr.js does: one whole number, octal or hexadecimal parts
    ['every IPv4 address in two halves, written as whole numbers', ['0/1', '2147483648/1']],
    ['every IPv4 address in two halves, octal and hexadecimal parts', ['00.0.0.0/1', '0x80.0.0.0/0x80.0.0.0']],
    ['every IPv4 address, octal parts (0200 is 128, 0300 is 192)', ['0.0.0.0/1', '0200.0.0.0/2', '0300.0.0.0/2']],
    ['every IPv6 address in two halves', ['::/1', '8000::/1']],
    ['every IPv6 address in three parts', ['::/2', '4000::/2', '8000::/1']],
    // spellings ipaddr.js takes and node:net does not: a 0-prefixed embedded IPv4 address, a five-digit group
    ['every IPv4 address as two IPv4-mapped halves, one with a 0-prefixed IPv4 part', ['::ffff:0.0.0.0/97', '::ffff:0200.0.0.0/97']],
    ['every IPv6 address in two halves, a five-digit group', ['::/1', '08000::/1']],
  ])('%s: warns', (_name, setting) => {
    expect(warns(setting)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['false', false],
    ['one hop', 1],
    ['loopback', 'loopback'],
    ['the named ranges', ['loopback', 'linklocal', 'uniquelocal']],
    ['half of IPv4', ['0.0.0.0/1']],
    ['IPv4 but one address', ['0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/3', '224.0.0.0/4', '240.0.0.0/5', '248.0.0.0/6', '252.0.0.0/7', '254.0.0.0/8', '255.0.0.0/9', '255.128.0.0/10', '255.192.0.0/11', '255.224.0.0/12', '255.240.0.0/13', '255.248.0.0/14', '255.252.0.0/15', '255.254.0.0/16', '255.255.0.0/17', '255.255.128.0/18', '255.255.192.0/19', '255.255.224.0/20', '255.255.240.0/21', '255.255.248.0/22', '255.255.252.0/23', '255.255.254.0/24', '255.255.255.0/25', '255.255.255.128/26', '255.255.255.192/27', '255.255.255.224/28', '255.255.255.240/29', '255.255.255.248/30', '255.255.255.252/31', '255.255.255.254']],
    ['half of IPv6', ['::/1']],
    ['an IPv4-mapped range too short to reach IPv4 addresses', ['::ffff:0:0/95']],
    ['a proxy address', '203.0.113.7'],
    ['half of IPv4, written as a whole number', ['0/1']],
    ['half of IPv4 twice, one written in hexadecimal (0x7f is 127)', ['0.0.0.0/1', '0x7f.0.0.0/1']],
  ])('%s: no warning', (_name, setting) => {
    expect(warns(setting)).toBe(false);
  });

  it("follows the proxy-addr in use: 2.0.7 (Express 4's ~2.0.7) matches an IPv4 client against ::/3 as ::ffff:a.b.c.d, so it trusts every IPv4 client (2.0.8 trusts none)", () => {
    // proxy-addr 2.0.7's trustSingle for an IPv6 subnet: an IPv4 address is converted to IPv4-mapped IPv6 and matched
    const proxyAddr207 = (address: string) => {
      const ip = ipaddr.parse(address);
      return (ip.kind() === 'ipv4' ? (ip as ipaddr.IPv4).toIPv4MappedAddress() : ip).match(ipaddr.parse('::'), 3);
    };
    expect(warns(['::/3'], proxyAddr207)).toBe(true);
    expect(warns(['::/3'])).toBe(false);
  });

  it('without a resolvable express → proxy-addr → ipaddr.js: no list is read (and nothing throws), `true` still warns', async () => {
    vi.resetModules();
    vi.doMock('node:module', () => ({ createRequire: () => { throw new Error("Cannot find module 'express'"); } }));
    try {
      const { BackOfficeTrustProxyCheck: Check } = await import('../../src/backoffice-identity/http/trust-proxy-check.js');
      expect(warns(true, undefined, Check)).toBe(true);
      expect(warns(['0.0.0.0/1', '128.0.0.0/1'], undefined, Check)).toBe(false);
    } finally {
      vi.doUnmock('node:module');
      vi.resetModules();
    }
  });
});
