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
  const last = value.length - 1;
  let escaped = '';
  for (let i = 0; i <= last; i++) {
    const c = value[i];
    if (c === '\u0000') escaped += '\\00';
    else if ('",+;<>\\='.includes(c)) escaped += `\\${c}`;
    // Decided on the value, not on the escaped text: `a\ ` ends in an escaped backslash and a bare space.
    else if ((c === ' ' && (i === 0 || i === last)) || (c === '#' && i === 0)) escaped += `\\${c}`;
    else escaped += c;
  }
  return escaped;
}
