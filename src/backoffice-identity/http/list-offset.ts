import { Max } from 'class-validator';

/**
 * The deepest offset (`skip`) a list route accepts. PostgreSQL reads and throws away every row before an offset,
 * so an unbounded `skip` lets one caller make the database walk millions of rows per request (OWASP ASVS 5.0
 * 2.4.1, 4.0 11.1.4). Deeper pages go by cursor (`GET /audit`'s `before`) or by narrower filters. The same number as
 * `EXACT_COUNT_CAP` (up to which the TypeORM stores' `total` is exact) but not tied to it: this bound is the HTTP
 * routes', whatever the store, and limits the rows an offset walks; that one limits the rows a count reads.
 */
export const MAX_LIST_SKIP = 10_000;

/** {@link MAX_LIST_SKIP} as the messages and OpenAPI descriptions write it ("10,000"). */
export const MAX_LIST_SKIP_TEXT = MAX_LIST_SKIP.toLocaleString('en-US');

/**
 * `@Max(MAX_LIST_SKIP)` for a list's `skip`: 400 `validation_failed` (field `skip`, code `max`) whose description
 * says how to reach deeper entries (`deeper`, e.g. "page with before").
 */
export function MaxListSkip(deeper: string): PropertyDecorator {
  return Max(MAX_LIST_SKIP, { message: `skip must be at most ${MAX_LIST_SKIP_TEXT} (${deeper}).` });
}
