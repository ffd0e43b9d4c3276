// The Better Auth peer of `npm run bench -- --peer better-auth`: its own Node server on the same PostgreSQL
// (its own database), email + password, sessions in the database, `getSession` per request
// (`GET /api/auth/get-session`). Prints `listening <port>` once ready. Env: DATABASE_URL, BETTER_AUTH_SECRET.
import http from 'node:http';
import pg from 'pg';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const auth = betterAuth({
  database: pool,
  secret: process.env.BETTER_AUTH_SECRET,
  baseURL: 'http://127.0.0.1',
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  advanced: { useSecureCookies: false },
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
const handler = toNodeHandler(auth);
const server = http.createServer((request, response) => {
  if (request.url?.startsWith('/api/auth/')) return void handler(request, response);
  response.writeHead(404).end();
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => server.close(() => pool.end().then(() => process.exit(0))));
