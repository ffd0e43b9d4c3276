/**
 * `work`'s outcome if it settles within `ms`; else, at the limit, `onTimeout()`'s (its value, or the error it throws).
 * A failure of `work` after the limit goes to `onLateFailure`: it is never an unhandled rejection. The timer is
 * cleared as soon as the race is decided.
 */
export function withinTimeLimit<T, U>(work: Promise<T>, ms: number, onTimeout: () => U, onLateFailure: (error: unknown) => void = () => undefined): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const timeout = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      late = true;
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  const guarded = work.then(
    (value) => value,
    (error: unknown): never => {
      if (!late) throw error;
      onLateFailure(error);
      return undefined as never;
    },
  );
  return Promise.race([guarded, timeout]).finally(() => clearTimeout(timer));
}
