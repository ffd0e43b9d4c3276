/**
 * Escapes a value for an LDAP search filter (RFC 4515 section 3): `*`, `(`, `)`, `\` and NUL become `\2a`,
 * `\28`, `\29`, `\5c`, `\00`, so user input can only ever be a literal value, never filter syntax.
 */
export function escapeLdapFilterValue(value: string): string {
  return value.replace(/[*()\\\u0000]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Escapes a value for one attribute value of a distinguished name (RFC 4514 section 2.4): `"`, `+`, `,`, `;`,
 * `<`, `>`, `\` and `=` get a backslash, a leading space or `#` and a trailing space too, NUL becomes `\00`.
 */
export function escapeLdapDnValue(value: string): string {
  let escaped = value.replace(/[",+;<>\\=]/g, (c) => `\\${c}`).replace(/\u0000/g, '\\00');
  if (/^[ #]/.test(escaped)) escaped = `\\${escaped}`;
  if (escaped.endsWith(' ') && !escaped.endsWith('\\ ')) escaped = `${escaped.slice(0, -1)}\\ `;
  return escaped;
}
