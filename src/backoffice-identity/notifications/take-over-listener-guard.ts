import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { EVENT_LISTENER_METADATA, EventEmitter2 } from '@nestjs/event-emitter';
import { BackOfficeEvents } from '../constants.js';
import { BACKOFFICE_EVENT_EMITTER } from './backoffice-event-emitter.provider.js';
import { currentListenerRun } from './listener-run.js';
import { BackOfficeNotification } from './notifications.js';

/** What `@OnEvent(event, options)` stores on the method (`@nestjs/event-emitter`'s EVENT_LISTENER_METADATA, one per decorator). */
interface OnEventMetadata {
  event: string | symbol | Array<string | symbol>;
  options?: { suppressErrors?: boolean };
}

type Method = (...args: unknown[]) => unknown;

/** Marks a method this guard wrapped (its value: the host's method), so a second pass leaves it as it is. */
const GUARDED = Symbol('BackOfficeTakeOverListenerGuard');

/**
 * The events whose listeners take a decision the module acts on and that a failure voids: a `SendEmailNotification`
 * listener that called `handleEmail()` and then failed did not deliver the email. (`signOutRedirectUrl` is used
 * whether or not the listener that set it failed afterwards, so the logout's listeners need no guard.)
 */
const TAKE_OVER_EVENTS: readonly string[] = [BackOfficeEvents.SendEmail];

/** EventEmitter2's segments of an event pattern: a string split on the emitter's delimiter, an array as its segments (`wildcard: true`). */
function segments(event: string | Array<string | symbol>, delimiter: string): string[] {
  if (typeof event === 'string') return event.split(delimiter);
  return event.length === 1 && typeof event[0] === 'string' ? event[0].split(delimiter) : event.map(String);
}

/** Whether EventEmitter2 may call a listener of `pattern` for `name` (`*` one segment, `**` any number; with `wildcard: false` only the exact name). */
function matches(pattern: string[], name: string[]): boolean {
  if (pattern.length === 0) return name.length === 0;
  const [head, ...rest] = pattern;
  if (head === '**') return rest.length === 0 || name.some((_, i) => matches(rest, name.slice(i)));
  return name.length > 0 && (head === '*' || head === name[0]) && matches(rest, name.slice(1));
}

/**
 * Whether a listener of `event` may receive a take-over event, on the host's emitter's `delimiter` (`.` unless
 * `EventEmitterModule.forRoot({ delimiter })` set another: with `:` the name is one segment that `*` matches).
 * Wildcards are matched even with `wildcard: false` (a harmless over-match: the wrapper only reports a failure).
 */
function mayReceiveTakeOverEvent(event: OnEventMetadata['event'], delimiter: string): boolean {
  if (typeof event === 'symbol') return false;
  const pattern = segments(event, delimiter);
  return TAKE_OVER_EVENTS.some((name) => matches(pattern, name.split(delimiter)));
}

/**
 * `@nestjs/event-emitter` registers an `@OnEvent()` listener with `suppressErrors: true` unless the host writes
 * `false`: its error is caught and logged there and never reaches the module's publisher. A listener that called
 * `handleEmail()` (took an invite over) and then failed (the host's mailer was down) then looked like a delivery: the
 * invite answered 201 and nothing was sent. Before the listeners are registered (`@nestjs/event-emitter` does it at
 * application bootstrap), this guard finds every `@OnEvent()` method that may receive a `SendEmailNotification` and
 * does not set `suppressErrors: false`, and puts a transparent wrapper in its place on the instance: the same
 * arguments, `this` and result, the same error thrown on (so the host's `suppressErrors` still decides what happens
 * to it), but a failure first tells the notification that this listener's run failed, as the publisher does for a
 * listener whose error reaches it. The host's class and its metadata are left as they are.
 *
 * A request-scoped listener (a new instance per event) cannot be wrapped: it is named in a warning at start-up, with
 * the fix (`suppressErrors: false`).
 */
@Injectable()
export class BackOfficeTakeOverListenerGuard implements OnModuleInit {
  private readonly logger = new Logger('BackOfficeIdentityModule');

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(BACKOFFICE_EVENT_EMITTER) private readonly emitter: EventEmitter2,
  ) {}

  onModuleInit(): void {
    const delimiter = (this.emitter as { delimiter?: unknown }).delimiter;
    const on = typeof delimiter === 'string' && delimiter.length > 0 ? delimiter : '.';
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance = wrapper.instance as Record<string | symbol, unknown> | null | undefined;
      if (!instance || wrapper.isAlias || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (!prototype) continue;
      for (const key of this.scanner.getAllMethodNames(prototype)) {
        const method = instance[key];
        if (typeof method !== 'function' || (method as { [GUARDED]?: unknown })[GUARDED]) continue;
        const listens = (Reflect.getMetadata(EVENT_LISTENER_METADATA, method) as OnEventMetadata[] | undefined) ?? [];
        if (!listens.some(({ event, options }) => options?.suppressErrors !== false && mayReceiveTakeOverEvent(event, on))) continue;
        this.guard(wrapper, instance, key, method as Method);
      }
    }
  }

  private guard(wrapper: InstanceWrapper, instance: Record<string | symbol, unknown>, key: string, method: Method): void {
    const where = `${(instance.constructor as { name?: string } | undefined)?.name ?? 'an anonymous class'}.${key}`;
    if (!wrapper.isDependencyTreeStatic()) {
      this.logger.warn(
        `${where} listens to ${BackOfficeEvents.SendEmail} without suppressErrors: false and is request-scoped: if it calls handleEmail() ` +
          'and then fails, @nestjs/event-emitter catches the error and the module counts the email as delivered. ' +
          `Register it with @OnEvent(BackOfficeEvents.SendEmail, { suppressErrors: false }).`,
      );
      return;
    }
    // A method of the class (not one set on the instance) is looked up there at each call: a spy or an instrumentation
    // set on the class's prototype after start-up still sees the calls.
    const prototype = Object.getPrototypeOf(instance) as object;
    const ofClass = !Object.prototype.hasOwnProperty.call(instance, key);
    const guarded = function (this: unknown, ...args: unknown[]): unknown {
      const current = ofClass ? (Reflect.get(prototype, key, this) as unknown) : method;
      const target = typeof current === 'function' && current !== guarded ? (current as Method) : method;
      const run = currentListenerRun();
      const failed = (error: unknown): never => {
        if (run !== undefined) for (const arg of args) if (arg instanceof BackOfficeNotification) arg.listenerFailed(run);
        throw error;
      };
      let result: unknown;
      try {
        result = target.apply(this, args);
      } catch (error) {
        return failed(error);
      }
      return typeof (result as PromiseLike<unknown> | null)?.then === 'function' ? Promise.resolve(result).catch(failed) : result;
    };
    // @nestjs/event-emitter reads the @OnEvent() metadata from the method it finds on the instance: the wrapper carries it.
    for (const metadataKey of Reflect.getOwnMetadataKeys(method)) Reflect.defineMetadata(metadataKey, Reflect.getOwnMetadata(metadataKey, method), guarded);
    Object.defineProperty(guarded, 'name', { value: method.name });
    Object.defineProperty(guarded, GUARDED, { value: method });
    try {
      Object.defineProperty(instance, key, { value: guarded, writable: true, configurable: true, enumerable: false });
    } catch {
      this.logger.warn(
        `${where} listens to ${BackOfficeEvents.SendEmail} without suppressErrors: false and its instance cannot take the module's guard (frozen): ` +
          'if it calls handleEmail() and then fails, the module counts the email as delivered. Register it with { suppressErrors: false }.',
      );
    }
  }
}
