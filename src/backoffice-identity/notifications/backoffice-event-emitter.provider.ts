import type { FactoryProvider } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';

/** Internal token: the host app's `EventEmitter2`, through which the module publishes and audits its notifications. */
export const BACKOFFICE_EVENT_EMITTER = Symbol('BACKOFFICE_EVENT_EMITTER');

/**
 * Resolves the host's `EventEmitter2` once for the module's consumers. Without `EventEmitterModule.forRoot()` in the
 * host app, start-up fails with the fix in the message, not with Nest's advice to import it into this module.
 */
export const backOfficeEventEmitterProvider: FactoryProvider<EventEmitter2> = {
  provide: BACKOFFICE_EVENT_EMITTER,
  inject: [{ token: EventEmitter2, optional: true }],
  useFactory: (emitter: EventEmitter2 | undefined) => {
    if (emitter) return emitter;
    throw new Error(
      'BackOfficeIdentityModule: no EventEmitter2 to publish its notifications through. Add EventEmitterModule.forRoot() ' +
        "(from '@nestjs/event-emitter') to the imports of your app module, beside BackOfficeIdentityModule.",
    );
  },
};
