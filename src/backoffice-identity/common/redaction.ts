/**
 * Keeping secrets (email tokens) out of logs (OWASP ASVS 4.0 7.1.1): text about to be logged, and errors that go up
 * the stack to whatever logs them, lose every form of the secrets they quote.
 */

const REDACTED = '[redacted]';
/** Shorter values are not searched for (they would match ordinary text). */
const MIN_SECRET_LENGTH = 8;

/** The forms a secret takes in text: raw, percent-encoded, form-encoded; longest first. */
export function secretForms(secrets: Iterable<string>): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) continue;
    for (const form of [secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2)]) forms.add(form);
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/** `text` with every one of `forms` (see {@link secretForms}) replaced by `[redacted]`. */
export function redactText(text: string, forms: readonly string[]): string {
  let redacted = text;
  for (const form of forms) redacted = redacted.split(form).join(REDACTED);
  return redacted;
}

/**
 * Removes the secrets from an error in place, before it goes up the stack: its message, its stack (once formatted it
 * keeps the message it had), its other string properties (a relay's `response`) and those of its causes.
 */
export function redactError(error: unknown, forms: readonly string[], depth = 0): void {
  if (forms.length === 0 || typeof error !== 'object' || error === null || depth > 3) return;
  const target = error as Record<string, unknown>;
  for (const key of new Set([...Object.getOwnPropertyNames(target), 'message', 'stack'])) {
    let value: unknown;
    try {
      value = target[key];
    } catch {
      continue;
    }
    if (typeof value === 'string') {
      const redacted = redactText(value, forms);
      if (redacted !== value) {
        try {
          Object.defineProperty(target, key, { value: redacted, writable: true, configurable: true, enumerable: Object.prototype.propertyIsEnumerable.call(target, key) });
        } catch {
          // a frozen error: nothing more to do
        }
      }
    } else if (key === 'cause') {
      redactError(value, forms, depth + 1);
    }
  }
}
