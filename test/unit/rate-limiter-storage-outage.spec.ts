import type { ThrottlerStorage } from '@nestjs/throttler';
import { BackOfficeRateLimiter } from '../../src/backoffice-identity/rate-limit/backoffice-rate-limiter.js';
import { resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/options/resolve-options.js';

describe('BackOfficeRateLimiter: a failing storage', () => {
  it('OWASP ASVS 5.0 16.5.2: fails open with one error line per outage (a reminder each minute it lasts), and one line when the storage answers again', async () => {
    let down = true;
    const storage: ThrottlerStorage = {
      increment: async () => {
        if (down) throw new Error('Command timed out');
        return { totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 };
      },
    };
    const limiter = new BackOfficeRateLimiter(storage, resolveBackOfficeIdentityOptions({}));
    const logger = (limiter as unknown as { logger: { error: (m: string) => void; log: (m: string) => void } }).logger;
    const errors = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const infos = vi.spyOn(logger, 'log').mockImplementation(() => undefined);
    const realNow = Date.now.bind(Date);
    let offsetMs = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offsetMs);
    try {
      const rule = { name: 'login-ip', key: '192.0.2.1', limit: 1, windowSeconds: 60 };
      for (let i = 0; i < 50; i++) await limiter.enforce([rule, { ...rule, name: 'login-ip-user' }]);
      expect(errors).toHaveBeenCalledTimes(1);
      expect(errors.mock.calls[0][0]).toMatch(/Rate-limit storage failed \(login-ip: Command timed out\): requests go through without rate limits/);
      offsetMs = 61_000;
      await limiter.enforce([rule]);
      await limiter.enforce([rule]);
      expect(errors).toHaveBeenCalledTimes(2);
      expect(errors.mock.calls[1][0]).toMatch(/still failing .*: 101 calls went without rate limits since/);
      down = false;
      await limiter.enforce([rule]);
      expect(infos).toHaveBeenCalledTimes(0); // answered once: not yet over (see the flapping test)
      offsetMs += 10_000;
      await limiter.enforce([rule]);
      await limiter.enforce([{ ...rule, key: '192.0.2.2' }]);
      expect(infos).toHaveBeenCalledTimes(1);
      expect(infos.mock.calls[0][0]).toMatch(/Rate-limit storage answers again after 71 s \(102 calls went without rate limits\): rate limits apply/);
    } finally {
      clock.mockRestore();
    }
  });

  it('a storage that fails on and off (one call in ten under load) is one outage, not an error and a recovery line per failure', async () => {
    let calls = 0;
    const storage: ThrottlerStorage = {
      increment: async () => {
        if (++calls % 10 === 0) throw new Error('Command timed out');
        return { totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 };
      },
    };
    const limiter = new BackOfficeRateLimiter(storage, resolveBackOfficeIdentityOptions({}));
    const logger = (limiter as unknown as { logger: { error: (m: string) => void; log: (m: string) => void } }).logger;
    const errors = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const infos = vi.spyOn(logger, 'log').mockImplementation(() => undefined);
    const rule = { name: 'login-ip', key: '192.0.2.1', limit: 5, windowSeconds: 60 };
    for (let i = 0; i < 200; i++) await limiter.enforce([rule]);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(infos).toHaveBeenCalledTimes(0);
  });
});
