import { type ArgumentMetadata, Injectable, ValidationPipe, type ValidationError } from '@nestjs/common';
import { parse as parseQueryString } from 'node:querystring';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { BackOfficeHttpError } from './backoffice-http-error.js';

/**
 * Constraints that say a value is not of the field's type, most general first. class-validator runs every rule of a
 * field, so `skip=abc` also broke `min` and `max` (listed first, as the decorators apply bottom-up), and
 * `groups: "admin"` broke `arrayMaxSize` beside `isArray`: errors that read as "too large" for a value that is not a
 * number, or not a list, at all. A field that breaks a rule of the first tier (it is not the container it should be:
 * its elements' rules, `each`, mean nothing then) reports those alone; else one that breaks a rule of the second tier
 * (a scalar of the wrong type, an element of the wrong type, a nested object that is none) reports those alone;
 * else every rule it broke. Only that field is concerned: the other fields' errors stay as they are.
 */
const TYPE_CONSTRAINT_TIERS: ReadonlyArray<ReadonlySet<string>> = [
  new Set(['isArray', 'isObject']),
  new Set(['isInt', 'isNumber', 'isString', 'isBoolean', 'nestedValidation']),
];

/**
 * A field's broken constraints to report, and whether it is not the container it should be (then its nested errors,
 * if any, are left out: they are about a shape the field does not have). The nested errors of a field whose elements
 * are of the wrong type stay: they may be about other elements.
 */
function reportedConstraints(error: ValidationError): { constraints: Array<[string, string]>; notContainer: boolean } {
  const all = Object.entries(error.constraints ?? {});
  for (const [index, tier] of TYPE_CONSTRAINT_TIERS.entries()) {
    const typeErrors = all.filter(([constraint]) => tier.has(constraint));
    if (typeErrors.length > 0) return { constraints: typeErrors, notContainer: index === 0 };
  }
  return { constraints: all, notContainer: false };
}

function flatten(errors: ValidationError[], parent = ''): Array<{ field: string; code: string; description: string }> {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const { constraints, notContainer } = reportedConstraints(error);
    const own = constraints.map(([constraint, description]) => ({
      field,
      code: constraint === 'whitelistValidation' ? 'unknown_field' : constraint,
      description,
    }));
    return notContainer ? own : [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * U+FFFD (what invalid UTF-8 in a body decodes to), NUL (PostgreSQL refuses it in text) and a UTF-16 surrogate
 * without its pair (a JSON escape such as `"\ud800"`: no UTF-8 text can hold it, the driver would write U+FFFD).
 */
const UNSTORABLE_TEXT = /[\uFFFD\u0000]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Paths of string values (and object keys) that no text column can hold: refused at the edge, so nothing a
 * client sent is silently changed on the way into the database.
 */
function unstorableStringPaths(value: unknown, path = '', depth = 0): string[] {
  if (typeof value === 'string') return UNSTORABLE_TEXT.test(value) ? [path || '(value)'] : [];
  if (depth > 8 || typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, v]) => {
    const here = path ? `${path}.${key}` : key;
    return UNSTORABLE_TEXT.test(key) ? [here] : unstorableStringPaths(v, here, depth + 1);
  });
}

/**
 * Paths of query values that are not UTF-8 as the client sent them (`%FF`, an encoded surrogate `%ED%A0%80`): Node's
 * `querystring` (Express's default parser) decodes such an escape to U+FFFD, which {@link unstorableStringPaths} refuses,
 * while Fastify's parser (and Express's `qs`) keeps the escape as text, so the same URL passed there. Read from the
 * raw query string of the request context (set by the module's middleware) and decoded as Node's parser does, so both
 * platforms refuse the same values with the same paths.
 */
function unstorableQueryPaths(): string[] {
  const raw = BackOfficeRequestContextStore.current().rawQuery;
  if (!raw || raw.indexOf('%') === -1) return [];
  return unstorableStringPaths(parseQueryString(raw.slice(0, 16_384)));
}

/** Deepest nesting a body may have; the module's DTOs need 2. */
export const MAX_BODY_DEPTH = 16;

/**
 * True when `value` nests objects or arrays deeper than `max`. Iterative (an explicit stack), so a body
 * nested thousands deep is refused without any recursion (class-transformer would overflow the call stack).
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(current)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

/** Paths of own `__proto__` / `constructor` / `prototype` keys (JSON.parse makes them own properties). */
function pollutingKeyPaths(value: unknown, path = '', depth = 0): string[] {
  if (depth > 8 || typeof value !== 'object' || value === null) return [];
  return Object.keys(value).flatMap((key) => {
    const here = path ? `${path}.${key}` : key;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') return [here];
    return pollutingKeyPaths((value as Record<string, unknown>)[key], here, depth + 1);
  });
}

/** The statics of a body or query class that the pipe reads from that class only. */
interface OwnRequestShape {
  /** A query class's fields: the others are ignored. */
  queryFields: readonly string[];
  /** A body class whose fields are all optional: a left-out body is read as `{}`. */
  optionalBody: boolean;
  /** A body class that takes no fields: any field is refused as unknown. */
  emptyBody: boolean;
}

/**
 * `metatype[key]` when the class defines it itself (`Object.hasOwn`), else undefined. A static is inherited by a
 * subclass, which may add fields the parent's rule does not fit (a required field beside an optional body, a field
 * a parent's `queryFields` would drop unvalidated): such a rule counts only where it is written, and a subclass that
 * wants it names it again.
 */
function ownStatic<K extends keyof OwnRequestShape>(metatype: unknown, key: K): OwnRequestShape[K] | undefined {
  return typeof metatype === 'function' && Object.hasOwn(metatype, key) ? (metatype as unknown as OwnRequestShape)[key] : undefined;
}

/**
 * Validates bodies, queries and params; unknown fields and wrong types give 400 `validation_failed`,
 * and so do strings that were not valid UTF-8 (decoded to U+FFFD), hold NUL or an unpaired surrogate, and bodies nested deeper
 * than {@link MAX_BODY_DEPTH} (checked first, without recursion).
 */
@Injectable()
export class BackOfficeValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      forbidUnknownValues: true,
      stopAtFirstError: false,
      exceptionFactory: (errors) =>
        new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', { errors: flatten(errors) }),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // A query class with `static queryFields` reads only those fields and ignores the others (routes that ignored
    // the query before they took one); a bracketed or dotted form of one of them (`take[]`) is still refused. Only a
    // class's own `queryFields` counts: a subclass that adds a field inherits the static but must not have its new
    // field silently dropped (unvalidated); it validates every field (unknown ones refused) unless it names its own.
    const queryFields = metadata.type === 'query' ? ownStatic(metadata.metatype, 'queryFields') : undefined;
    const ownField = (path: string) => queryFields!.includes(path.split(/[[.]/)[0]!);
    if (queryFields && typeof value === 'object' && value !== null) {
      value = Object.fromEntries(Object.entries(value).filter(([key]) => ownField(key)));
    }
    const polluting = metadata.type === 'custom' ? [] : pollutingKeyPaths(value);
    if (polluting.length > 0) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: polluting.map((field) => ({ field, code: 'unknown_field', description: `${field} is not allowed.` })),
      });
    }
    if (metadata.type !== 'custom' && nestedDeeperThan(value, MAX_BODY_DEPTH)) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: [{ field: '(body)', code: 'too_deep', description: `The body nests deeper than ${MAX_BODY_DEPTH} levels.` }],
      });
    }
    // Express's JSON parser refuses a body that is not an object or array; Fastify's parses `null` or `"text"`.
    // Both answer 400 `malformed_json` for any body that is not an object.
    // A body whose fields are all optional (e.g. disable's `{ reason?, until? }`) may be left out entirely. Only a
    // class's own `optionalBody` counts: a subclass (say with a required field) needs a body unless it names its own.
    if (metadata.type === 'body' && value === undefined && ownStatic(metadata.metatype, 'optionalBody')) value = {};
    if (metadata.type === 'body' && (typeof value !== 'object' || value === null || Array.isArray(value))) throw BackOfficeHttpError.malformedJson();
    const invalid = metadata.type === 'custom' ? [] : unstorableStringPaths(value);
    if (metadata.type === 'query') for (const path of unstorableQueryPaths()) if (!invalid.includes(path) && (!queryFields || ownField(path))) invalid.push(path);
    if (invalid.length > 0) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: invalid.map((field) => ({ field, code: 'invalid_characters', description: `${field} is not valid Unicode text (invalid UTF-8, an unpaired surrogate) or holds a NUL character.` })),
      });
    }
    // A route that takes no fields (`static emptyBody`): any field is unknown (class-validator refuses a class without rules).
    // Only the class's own `emptyBody` counts: a subclass that adds fields has them validated, not all refused.
    if (metadata.type === 'body' && ownStatic(metadata.metatype, 'emptyBody')) {
      const fields = Object.keys(value as object);
      if (fields.length === 0) return value;
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: fields.map((field) => ({ field, code: 'unknown_field', description: `property ${field} should not exist` })),
      });
    }
    return super.transform(value, metadata);
  }
}
