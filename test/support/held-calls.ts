import { vi } from 'vitest';

/** A method whose calls wait, each at its start, until the test releases them (see {@link holdCalls}). */
export interface HeldCalls {
  /** Resolves once the method is called (the first call is waiting). */
  readonly reached: Promise<void>;
  /** Lets every call, waiting or to come, run the method as it was. */
  release(): void;
  /** Releases, and puts the method back. */
  restore(): void;
}

/**
 * Holds the calls of `target[method]` (an async method) at their start until `release()`: a request is stopped at
 * that point of its work while the test does something meanwhile (another request, an admin's change), then goes on.
 */
export function holdCalls<T extends object, K extends keyof T & string>(target: T, method: K): HeldCalls {
  const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
  return held(target, method, async (wait, ...args) => {
    await wait();
    return original(...args);
  });
}

/**
 * {@link holdCalls} for a store method called on the store a transaction binds (an object whose prototype `target`
 * is): the held call runs on that object, in its transaction, not on `target`. With `after`, the call is held once
 * the method has run, not at its start: what it locked stays locked in the open transaction while the test goes on.
 */
export function holdCallsInTransaction<T extends object, K extends keyof T & string>(target: T, method: K, options: { after?: boolean } = {}): HeldCalls {
  const original = target[method] as (...args: unknown[]) => Promise<unknown>;
  return held(target, method, async function (this: unknown, wait, ...args) {
    if (!options.after) await wait();
    const result = await original.apply(this, args);
    if (options.after) await wait();
    return result;
  });
}

/** `target[method]` replaced by `call`, whose `wait()` reaches the hold and waits for its release. */
function held<T extends object>(
  target: T,
  method: string,
  call: (this: unknown, wait: () => Promise<void>, ...args: unknown[]) => Promise<unknown>,
): HeldCalls {
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const wait = () => (reach(), released);
  const spy = vi.spyOn(target as Record<string, (...args: unknown[]) => Promise<unknown>>, method).mockImplementation(function (this: unknown, ...args: unknown[]) {
    return call.call(this, wait, ...args);
  });
  return {
    reached,
    release,
    restore: () => {
      release();
      spy.mockRestore();
    },
  };
}

/**
 * Sends a request (`send`) whose call of the held method waits, runs `meanwhile` (a concurrent change) once it is
 * reached, then releases it and answers the request's answer; the method is put back in any case.
 */
export async function sentWhileHeld<R>(held: HeldCalls, send: () => Promise<R>, meanwhile: () => Promise<unknown>): Promise<R> {
  try {
    const sent = send();
    await held.reached;
    await meanwhile();
    held.release();
    return await sent;
  } finally {
    held.restore();
  }
}
