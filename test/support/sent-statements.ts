import pg from 'pg';

/** One SQL statement a `pg` client sent: its text (whitespace collapsed) and its prepared-statement name, if any. */
export interface SentStatement {
  text: string;
  name: string | null;
  /**
   * How many statements sent earlier during the same `work` were still waiting for their answer when this one was
   * sent (statements sent at once, on several connections, count the ones before them); null when sent with a callback.
   */
  inFlight: number | null;
}

/**
 * Every SQL statement any `pg` client of this process sends while `work` runs (the app's pool included), in order:
 * how the suites count database round trips and lookups without a mock (the real queries still run).
 */
export async function statementsSentDuring(work: () => Promise<unknown>): Promise<SentStatement[]> {
  const sent: SentStatement[] = [];
  const original = pg.Client.prototype.query;
  let waiting = 0;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const config = args[0] as string | { text?: string; name?: string };
    const text = typeof config === 'string' ? config : (config?.text ?? '');
    const statement: SentStatement = { text: text.replace(/\s+/g, ' ').trim(), name: typeof config === 'string' ? null : (config?.name ?? null), inFlight: null };
    sent.push(statement);
    const result = (original as (...a: unknown[]) => unknown).apply(this, args);
    if (result instanceof Promise) {
      statement.inFlight = waiting++;
      result.then(
        () => waiting--,
        () => waiting--,
      );
    }
    return result;
  } as typeof original;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = original;
  }
  return sent;
}
