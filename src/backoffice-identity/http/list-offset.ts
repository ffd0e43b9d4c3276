import { Max } from 'class-validator';

/**
 * The deepest offset (`skip`) a list route accepts. PostgreSQL reads and throws away every row before an offset,
 * so an unbounded `skip` lets one caller make the database walk millions of rows per request (OWASP ASVS 5.0
 * 2.4.1, 4.0 11.1.4). Deeper pages go by cursor (`GET /audit`'s `before`) or by narrower filters.
 */
export const MAX_LIST_SKIP = 10_000;

/**
 * `@Max(MAX_LIST_SKIP)` for a list's `skip`: 400 `validation_failed` (field `skip`, code `max`) whose description
 * says how to reach deeper entries (`deeper`, e.g. "page with before").
 */
export function MaxListSkip(deeper: string): PropertyDecorator {
  return Max(MAX_LIST_SKIP, { message: `skip must be at most 10,000 (${deeper}).` });
}
