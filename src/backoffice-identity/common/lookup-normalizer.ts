/** Normalises usernames and emails for lookup and uniqueness: NFKC, trimmed, lower case. */
export function normalizeLookupKey(value: string): string {
  return value.normalize('NFKC').trim().toLowerCase();
}

/** Any C0/C1 control character or a lone surrogate. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
