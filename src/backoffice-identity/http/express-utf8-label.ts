import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { BackOfficeModulePaths } from './module-paths.js';
import { withUtf8CharsetName } from './readable-body.js';

/** The part of an Express 5 application this class uses (so the module needs no Express types). */
interface ExpressApplication {
  use(handler: (request: IncomingMessage, response: unknown, next: () => void) => void): unknown;
  router?: { stack?: unknown[] };
}

/**
 * Express's body-parser refuses a JSON or form body labelled `charset=utf8` (the WHATWG label of UTF-8, which OAuth
 * and HTTP client libraries send) with 415 before any middleware of the module runs, where Fastify (whose parsers run
 * after the module's middleware) reads it. So that both platforms read it, this puts a layer that renames the label
 * `utf-8` in the `Content-Type` of requests under the module's paths at the front of the app's router, when the
 * module starts: before every parser, whoever registered it and however (Nest's own, `app.use(express.json())`, a
 * parser applied through a `MiddlewareConsumer` or wrapped in the host's middleware, whose names say nothing), and
 * before the routes. Every other charset stays as sent and is refused by the module (`assertReadableBody`). It reads
 * only the URL and that header, so nothing needs to run before it (Express 5 has no init layers: the query string is
 * parsed on demand); it sees the URL as the client sent it, before any host middleware rewrites it. A parser the host
 * adds after the app started comes after the routes and never sees a module request. Nothing happens on Fastify.
 */
@Injectable()
export class BackOfficeExpressUtf8Label implements OnModuleInit {
  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(BackOfficeModulePaths) private readonly modulePaths: BackOfficeModulePaths,
  ) {}

  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter || adapter.getType() !== 'express') return;
    const app = adapter.getInstance() as ExpressApplication;
    app.use(this.renameLabel);
    const stack = app.router?.stack;
    if (stack && stack.length > 1) stack.unshift(stack.pop()!);
  }

  /** The middleware: `charset=utf8` becomes `charset=utf-8` under the module's paths. */
  private readonly renameLabel = (request: IncomingMessage, _response: unknown, next: () => void): void => {
    const contentType = request.headers['content-type'];
    if (typeof contentType === 'string' && this.modulePaths.contains(request.url ?? '')) request.headers['content-type'] = withUtf8CharsetName(contentType);
    next();
  };
}
