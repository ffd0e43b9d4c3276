import pg from 'pg';

/** One SQL statement a `pg` client sent: its text (whitespace collapsed) and its prepared-statement name, if any. */
export interface SentStatement {
  text: string;
  name: string | null;
}

/**
 * Every SQL statement any `pg` client of this process sends while `work` runs (the app's pool included), in order:
 * how the suites count database round trips and lookups without a mock (the real queries still run).
 */
export async function statementsSentDuring(work: () => Promise<unknown>): Promise<SentStatement[]> {
  const sent: SentStatement[] = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const config = args[0] as string | { text?: string; name?: string };
    const text = typeof config === 'string' ? config : (config?.text ?? '');
    sent.push({ text: text.replace(/\s+/g, ' ').trim(), name: typeof config === 'string' ? null : (config?.name ?? null) });
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = original;
  }
  return sent;
}
