import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { BackOfficeHttpError } from './backoffice-http-error.js';
import { emptyBodyReadAsNoFields, jsonBodyExpressRefuses, readFormFieldsAsExpress, type BackOfficeHttpRequestWithBody } from './readable-body.js';

/** The part of a Fastify instance this class uses (so the module needs no Fastify types). */
interface FastifyHooks {
  addHook(name: 'preValidation', hook: (request: BackOfficeHttpRequestWithBody, reply: unknown, done: (error?: Error) => void) => void): unknown;
}

/**
 * On Fastify, the body Express's parsers give a request whose JSON or form body is empty (`Content-Length: 0`): no
 * fields (`{}`). The module's middleware set the `Content-Type` of such a body aside so that Fastify's JSON parser
 * does not refuse it (`setAsideEmptyBodyType` in `readable-body.ts`); this `preValidation` hook (after parsing,
 * before the route) then gives the route the `{}` Express's parser gives it, so that both platforms answer alike
 * (e.g. 400 `validation_failed` naming the missing fields). The same hook gives the route a form's fields as Express's
 * parser reads them (a byte order mark before the first name dropped, fields without a name skipped:
 * {@link readFormFieldsAsExpress}), and refuses, as Express's strict JSON parser does before any guard, a JSON body that
 * is neither an object nor an array (400 `malformed_json`: {@link jsonBodyExpressRefuses}). Nothing happens on Express.
 */
@Injectable()
export class BackOfficeFastifyEmptyBody implements OnModuleInit {
  constructor(@Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (adapter?.getType() !== 'fastify') return;
    (adapter.getInstance() as FastifyHooks).addHook('preValidation', (request, _reply, done) => {
      if (request.body === undefined && emptyBodyReadAsNoFields(request)) request.body = {};
      if (jsonBodyExpressRefuses(request)) return done(BackOfficeHttpError.malformedJson());
      readFormFieldsAsExpress(request);
      done();
    });
  }
}
