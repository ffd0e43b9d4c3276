import { Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

/** The part of an Express application this class reads (so the module needs no Express types). */
interface ExpressSettings {
  get(setting: 'trust proxy fn'): ((address: string, hop: number) => boolean) | undefined;
}

/**
 * Warns at start-up when Express trusts every proxy hop (`app.set('trust proxy', true)`, or a range such as
 * `0.0.0.0/0`): `req.ip` is then the first `X-Forwarded-For` entry, which the client writes itself (a proxy appends
 * the address it saw after it), so per-IP rate limits, sessions and the audit trail get an address of the client's
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
    const trust = (adapter.getInstance() as ExpressSettings).get('trust proxy fn');
    // An arbitrary peer trusted at any hop: every address in X-Forwarded-For is taken, the client's own first one too.
    if (typeof trust !== 'function' || !(trust('192.0.2.1', 0) && trust('198.51.100.1', 99) && trust('2001:db8::1', 99))) return;
    this.logger.warn(
      "Express's 'trust proxy' trusts every hop, so clients can choose their IP address with X-Forwarded-For " +
        '(per-IP rate limits, sessions and audit use it). Trust only your proxies: ' +
        "app.set('trust proxy', 1) behind one proxy (the hop count), or their addresses ('loopback', '10.0.0.0/8').",
    );
  }
}
