/** What `abort` throws: only the call that made it catches it. */
class TransactionAborted<A> extends Error {
  constructor(readonly value: A) {
    super('transaction aborted to roll it back');
  }
}

/**
 * Runs `run(abort)`, where `run` opens a transaction (a store's `transaction`, a manager's `inTransaction`, or a
 * runner built on them) and does its work in it: `abort(value)` throws, so the transaction rolls back, and this call
 * then answers `value`. Any other error goes on. A store without transactions keeps what was written before `abort`.
 * Internal: not part of the public API.
 */
export async function abortable<T, A>(run: (abort: (value: A) => never) => Promise<T>): Promise<T | A> {
  let aborted: TransactionAborted<A> | undefined;
  const abort = (value: A): never => {
    aborted = new TransactionAborted(value);
    throw aborted;
  };
  try {
    return await run(abort);
  } catch (error) {
    if (aborted !== undefined && error === aborted) return aborted.value;
    throw error;
  }
}
