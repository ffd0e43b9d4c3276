import { escapeLdapDnValue, escapeLdapFilterValue } from '../../src/backoffice-identity/ldap/ldap-escape.js';

describe('LDAP escaping', () => {
  it('RFC 4515: filter values cannot carry filter syntax', () => {
    expect(escapeLdapFilterValue('*)(uid=*')).toBe('\\2a\\29\\28uid=\\2a');
    expect(escapeLdapFilterValue('a\\b')).toBe('a\\5cb');
    expect(escapeLdapFilterValue('nul\u0000')).toBe('nul\\00');
    expect(escapeLdapFilterValue('jörg@example.com')).toBe('jörg@example.com');
    // RFC 4515's own examples
    expect(escapeLdapFilterValue('Parens R Us (for all your parenthetical needs)')).toBe('Parens R Us \\28for all your parenthetical needs\\29');
    expect(escapeLdapFilterValue('*')).toBe('\\2a');
    expect(escapeLdapFilterValue('C:\\MyFile')).toBe('C:\\5cMyFile');
  });

  it('RFC 4514: DN values cannot add RDNs or attributes', () => {
    expect(escapeLdapDnValue('comma,user')).toBe('comma\\,user');
    expect(escapeLdapDnValue('a+b=c;d<e>f"g\\h')).toBe('a\\+b\\=c\\;d\\<e\\>f\\"g\\\\h');
    expect(escapeLdapDnValue('#hash')).toBe('\\#hash');
    expect(escapeLdapDnValue(' lead')).toBe('\\ lead');
    expect(escapeLdapDnValue('trail ')).toBe('trail\\ ');
    expect(escapeLdapDnValue('nul\u0000')).toBe('nul\\00');
    expect(escapeLdapDnValue('alice,ou=people,dc=example,dc=org')).toBe('alice\\,ou\\=people\\,dc\\=example\\,dc\\=org');
 
  });

  it('RFC 4514: a trailing space is escaped also after an escaped backslash (the value ends with a backslash and a space)', () => {
    // `a\ ` must stay `a\ `: with the space left bare, a server reads the value as `a\` (or refuses the DN).
    expect(escapeLdapDnValue('a\\ ')).toBe('a\\\\\\ ');
    expect(escapeLdapDnValue('\\ ')).toBe('\\\\\\ ');
    expect(escapeLdapDnValue(' ')).toBe('\\ ');
    expect(escapeLdapDnValue('  ')).toBe('\\ \\ ');
    expect(escapeLdapDnValue('a , ')).toBe('a \\,\\ ');
  });
});
