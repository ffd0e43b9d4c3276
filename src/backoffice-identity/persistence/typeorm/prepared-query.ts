import { DataSource, type EntityManager } from 'typeorm';

interface PgPool {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/** Pools whose server shares one backend between connections (embedded PGlite): named statements clash there. */
const poolsWithoutNamedStatements = new WeakSet<object>();

/**
 * Runs a hot query as a named prepared statement on the `pg` pool behind TypeORM, so PostgreSQL parses and
 * plans it once per connection instead of on every request. Inside a transaction (or on a driver without a
 * pool) it runs as a plain `query()` on the same connection. A server that shares one backend between
 * connections (PGlite behind its socket server) answers "prepared statement already exists" (42P05) to a
 * second connection: that pool then uses plain queries from then on.
 */
export async function preparedQuery<T>(source: DataSource | EntityManager, name: string, text: string, values: unknown[]): Promise<T[]> {
  const manager = source instanceof DataSource ? source.manager : source;
  const pool = (manager.connection.driver as { master?: PgPool }).master;
  if (manager.queryRunner || !pool || typeof pool.query !== 'function' || poolsWithoutNamedStatements.has(pool)) {
    return manager.query(text, values);
  }
  try {
    return (await pool.query({ name, text, values })).rows as T[];
  } catch (error) {
    if ((error as { code?: string }).code !== '42P05') throw error;
    poolsWithoutNamedStatements.add(pool);
    return manager.query(text, values);
  }
}
