# The backoffice-identity demo app. `docker compose up` runs it with PostgreSQL, Mailpit and Redis.
# Alone: docker build -t backoffice-identity . && docker run -p 3000:3000 -e NODE_ENV=development backoffice-identity

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# No `npm prune --omit=dev`: the Nest/TypeORM packages are peer + dev dependencies of the library (a host app
# brings its own), and the demo's PostgreSQL driver, PGlite and Express adapter are dev dependencies too.
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
# production refuses placeholder secrets, insecure cookies and a non-https PUBLIC_URL (see .env.example).
ENV NODE_ENV=production \
    PORT=3000
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Without DATABASE_URL the demo keeps an embedded PGlite in /app/.data/pglite: mount a volume there.
RUN mkdir -p /app/.data && chown node:node /app/.data
VOLUME ["/app/.data"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: the app closes and exits 0.
CMD ["node", "dist/demo/main.js"]
