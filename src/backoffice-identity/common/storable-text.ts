/** NUL, or a UTF-16 surrogate without its pair: PostgreSQL's text, json and jsonb refuse them. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * `value` with every NUL and lone surrogate replaced by U+FFFD (what a decoder makes of bad input). PostgreSQL
 * refuses both in `text` ("invalid byte sequence for encoding UTF8: 0x00") and in `json`/`jsonb` (`\u0000`, an
 * unpaired `\ud800`), so writing them as they are would lose the whole row.
 */
export function toStorableText(value: string): string {
  return value.replace(UNSTORABLE, '\uFFFD');
}

/**
 * `JSON.stringify(value)` that PostgreSQL's `jsonb` accepts: NUL and lone surrogates in every string, keys
 * included, become U+FFFD.
 */
export function toStorableJson(value: unknown): string {
  return JSON.stringify(value, function (this: unknown, _key, v: unknown) {
    if (typeof v === 'string') return toStorableText(v);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    // Plain objects: rebuild so keys are cleaned too (toJSON, e.g. on Date, has already run).
    const entries = Object.entries(v as Record<string, unknown>);
    return entries.some(([k]) => toStorableText(k) !== k) ? Object.fromEntries(entries.map(([k, x]) => [toStorableText(k), x])) : v;
  }) ?? 'null';
}
