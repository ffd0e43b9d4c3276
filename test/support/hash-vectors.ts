/**
 * Published test vectors, used exactly as the two projects publish them:
 * ASP.NET Identity `test/Microsoft.AspNetCore.Identity.Test/PasswordHasherTest.cs` (password `my password`) and
 * Umbraco `tests/Umbraco.Tests.UnitTests/.../UmbracoPasswordHasherTests.cs` (password `Umbraco9Rocks!`).
 */
export interface HashVector {
  name: string;
  format: 'aspnet-identity' | 'umbraco-hmacsha256' | 'umbraco-sha1';
  hash: string;
  password: string;
}

export const ASPNET_PASSWORD = 'my password';
export const UMBRACO_PASSWORD = 'Umbraco9Rocks!';

export const VALID_VECTORS: HashVector[] = [
  {
    name: 'ASP.NET Identity V3 SHA-256, 250,000 iterations',
    format: 'aspnet-identity',
    hash: 'AQAAAAEAA9CQAAAAIESkQuj2Du8Y+kbc5lcN/W/3NiAZFEm11P27nrSN5/tId+bR1SwV8CO1Jd72r4C08OLvplNlCDc3oQZ8efcW+jQ=',
    password: ASPNET_PASSWORD,
  },
  {
    name: 'ASP.NET Identity V3 SHA-512, 50 iterations',
    format: 'aspnet-identity',
    hash: 'AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw',
    password: ASPNET_PASSWORD,
  },
  {
    name: 'ASP.NET Identity V2 (PBKDF2-HMAC-SHA1, 1,000 iterations)',
    format: 'aspnet-identity',
    hash: 'ANXrDknc7fGPpigibZXXZFMX4aoqz44JveK6jQuwY3eH/UyPhvr5xTPeGYEckLxz9A==',
    password: ASPNET_PASSWORD,
  },
  {
    name: 'Umbraco legacy HMACSHA256',
    format: 'umbraco-hmacsha256',
    hash: 'uB/pLEhhe1W7EtWMv/pSgg==1y8+aso9+h3AKRtJXlVYeg2TZKJUr64hccj82ZZ7Ksk=',
    password: UMBRACO_PASSWORD,
  },
  {
    name: 'Umbraco legacy SHA1',
    format: 'umbraco-sha1',
    hash: '6tZGfG9NTxJJYp19Fac9og==zzRggqANxhb+CbD/VabEt8cIde8=',
    password: UMBRACO_PASSWORD,
  },
];

/** ASP.NET Identity's failure vectors: refused at import (too short) or never verifying (extra data). */
export const TOO_SHORT_VECTOR = 'AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4A=';
export const EXTRA_DATA_VECTOR = 'AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHwAAAAAAAAAAAA';
