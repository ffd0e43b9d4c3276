import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { mkdirSync } from 'node:fs';

/** An embedded PostgreSQL (PGlite) served on a loopback port, so the plain `pg` driver reaches it. */
export interface EmbeddedPostgres {
  /** `postgres://` URL of the socket server. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts PGlite (in `dataDir`, or in memory when it is omitted) behind `@electric-sql/pglite-socket`.
 * PGlite is a single backend session: use a pool of one connection (`extra: { max: 1 }`).
 */
export async function startEmbeddedPostgres(dataDir?: string): Promise<EmbeddedPostgres> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const db = dataDir ? new PGlite(dataDir) : new PGlite();
  await db.waitReady;
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 100 });
  await server.start();
  const conn = server.getServerConn();
  return {
    url: `postgres://postgres@${conn}/postgres`,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}
