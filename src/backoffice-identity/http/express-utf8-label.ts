import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { BackOfficeModulePaths } from './module-paths.js';
import { withUtf8CharsetName } from './readable-body.js';

/** One layer of an Express router (only what this class reads). */
interface ExpressLayer {
  handle?: { name?: string };
}

/** The part of an Express 5 application this class uses (so the module needs no Express types). */
interface ExpressApplication {
  use(handler: (request: IncomingMessage, response: unknown, next: () => void) => void): unknown;
  router?: { stack?: ExpressLayer[] };
}

/** The names of Express's body parsers (`express.json()`, `express.urlencoded()`, Nest's `useBodyParser`). */
const PARSER_NAMES = new Set(['jsonParser', 'urlencodedParser']);

/**
 * Express's body-parser refuses a JSON or form body labelled `charset=utf8` (the WHATWG label of UTF-8, which OAuth
 * and HTTP client libraries send) with 415 before any middleware of the module runs, where Fastify (whose parsers run
 * after the module's middleware) reads it. So that both platforms read it, this puts a layer in front of the
 * app's body parsers that renames the label `utf-8` in the `Content-Type` of requests under the module's paths; every
 * other charset stays as sent and is refused by the module (`assertReadableBody`). Registered when the
 * module starts (Nest has registered its parsers by then) and moved before the first parser in the app's router;
 * without a parser in the stack it goes last, in front of any the host adds later. Nothing happens on Fastify.
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
    if (!stack) return;
    const firstParser = stack.findIndex((layer) => PARSER_NAMES.has(layer.handle?.name ?? ''));
    if (firstParser !== -1) stack.splice(firstParser, 0, stack.pop()!);
  }

  /** The middleware: `charset=utf8` becomes `charset=utf-8` under the module's paths. */
  private readonly renameLabel = (request: IncomingMessage, _response: unknown, next: () => void): void => {
    const contentType = request.headers['content-type'];
    if (typeof contentType === 'string' && this.modulePaths.contains(request.url ?? '')) request.headers['content-type'] = withUtf8CharsetName(contentType);
    next();
  };
}
