import { toStorableJson, toStorableText } from '../../src/backoffice-identity/common/storable-text.js';

describe('storable text (what PostgreSQL text and jsonb accept)', () => {
  it('replaces NUL and lone surrogates with U+FFFD and keeps surrogate pairs and other text', () => {
    expect(toStorableText('a\u0000b')).toBe('a\uFFFDb');
    expect(toStorableText('\ud800')).toBe('\uFFFD');
    expect(toStorableText('x\udc00\ud800')).toBe('x\uFFFD\uFFFD');
    expect(toStorableText('\ud83c\udf89 Zoë 名前 \t\n')).toBe('🎉 Zoë 名前 \t\n');
    expect(toStorableText('\ud83c\ud83c\udf89')).toBe('\uFFFD🎉');
  });

  it('cleans every string of a JSON value, keys included, and keeps Date and number values', () => {
    const json = toStorableJson({ 'k\u0000': ['\ud800', 1, null, { deep: 'ok\udc00' }], at: new Date('2026-01-01T00:00:00Z') });
    expect(json).not.toMatch(/\\u0000|\\ud[89a-f]/i);
    expect(JSON.parse(json)).toEqual({ 'k\uFFFD': ['\uFFFD', 1, null, { deep: 'ok\uFFFD' }], at: '2026-01-01T00:00:00.000Z' });
    expect(toStorableJson({})).toBe('{}');
  });
});
