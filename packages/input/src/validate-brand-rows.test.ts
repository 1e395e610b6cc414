import { ConfigError } from '@brandq/errors';
import { describe, expect, it } from 'vitest';
import { normalizeBrandKey } from './brand-key.js';
import type { SourceRow } from './brand-list.js';
import { validateBrandRows } from './validate-brand-rows.js';

/** Rows numbered like a sheet with a header: the first name is row 2. */
function rows(...names: (string | undefined)[]): SourceRow[] {
  return names.map((name, index) => ({ rowNumber: index + 2, name }));
}

describe('validateBrandRows', () => {
  it('turns each named row into a brand with its key, trimmed name, row number and hints', () => {
    const result = validateBrandRows([
      { rowNumber: 2, name: '  Nike ', hints: { website: ' nike.com ', country: 'US', notes: '' } },
    ]);
    expect(result).toEqual({
      brands: [
        { key: normalizeBrandKey('Nike'), name: 'Nike', rowNumber: 2, hints: { website: 'nike.com', country: 'US' } },
      ],
      skipped: [],
    });
  });

  it('collapses inner whitespace, including line breaks from multi-line cells', () => {
    expect(validateBrandRows(rows('Blue \t Bottle\nCoffee')).brands[0]?.name).toBe('Blue Bottle Coffee');
  });

  it('skips empty, whitespace-only and missing names', () => {
    const result = validateBrandRows(rows('', '   \t', undefined, 'Acme'));
    expect(result.brands.map((brand) => brand.rowNumber)).toEqual([5]);
    expect(result.skipped).toEqual([
      { rowNumber: 2, reason: 'empty_name', message: 'Row 2: brand name is empty' },
      { rowNumber: 3, reason: 'empty_name', message: 'Row 3: brand name is empty' },
      { rowNumber: 4, reason: 'empty_name', message: 'Row 4: brand name is empty' },
    ]);
  });

  it('treats a name made only of invisible formatting characters as empty', () => {
    expect(validateBrandRows(rows('\u200B\u200E')).skipped[0]?.reason).toBe('empty_name');
  });

  it('reports every repeat of a brand once, pointing at the first row that named it', () => {
    const result = validateBrandRows(rows('Acme', 'ACME', ' acme ', 'Ａｃｍｅ', 'Other'));
    expect(result.brands.map((brand) => [brand.rowNumber, brand.name])).toEqual([
      [2, 'Acme'],
      [6, 'Other'],
    ]);
    expect(result.skipped).toEqual([
      { rowNumber: 3, name: 'ACME', reason: 'duplicate', duplicateOf: 2, message: 'Row 3: "ACME" duplicates row 2' },
      { rowNumber: 4, name: 'acme', reason: 'duplicate', duplicateOf: 2, message: 'Row 4: "acme" duplicates row 2' },
      { rowNumber: 5, name: 'Ａｃｍｅ', reason: 'duplicate', duplicateOf: 2, message: 'Row 5: "Ａｃｍｅ" duplicates row 2' },
    ]);
  });

  it('does not let a rejected row claim a brand: a later valid spelling is kept', () => {
    const tooLong = `Acme${' '.repeat(10)}${'x'.repeat(200)}`;
    const result = validateBrandRows(rows(tooLong, 'Acme\u0007', 'Acme'));
    expect(result.brands.map((brand) => brand.rowNumber)).toEqual([4]);
  });

  it('accepts 200 characters counted as code points and rejects 201', () => {
    const emoji200 = '😀'.repeat(200); // 400 UTF-16 code units
    const result = validateBrandRows(rows(emoji200, `  ${'a'.repeat(200)}  `, 'b'.repeat(201)));
    expect(result.brands.map((brand) => brand.rowNumber)).toEqual([2, 3]);
    expect(result.skipped).toEqual([
      {
        rowNumber: 4,
        name: 'b'.repeat(201),
        reason: 'too_long',
        message: 'Row 4: brand name is 201 characters long; the limit is 200',
      },
    ]);
  });

  it('rejects names containing C0, DEL or C1 control characters', () => {
    const result = validateBrandRows(rows('Bad\u0007Bell', 'Nul\u0000', 'Del\u007F', 'Next\u0085Line', 'Esc\u001b[31m'));
    expect(result.brands).toEqual([]);
    expect(result.skipped.map((row) => [row.rowNumber, row.reason, row.message])).toEqual([
      [2, 'invalid_characters', 'Row 2: brand name contains the control character U+0007'],
      [3, 'invalid_characters', 'Row 3: brand name contains the control character U+0000'],
      [4, 'invalid_characters', 'Row 4: brand name contains the control character U+007F'],
      [5, 'invalid_characters', 'Row 5: brand name contains the control character U+0085'],
      [6, 'invalid_characters', 'Row 6: brand name contains the control character U+001B'],
    ]);
  });

  it('keeps right-to-left text, emoji (with joiners) and formula-looking names as names', () => {
    const names = ['مطعم الشام', 'שוק', '🍕 Pizza', '👩‍💻 Studio', '=HYPERLINK("http://x","y")', '+1 Brand', '@handle'];
    const result = validateBrandRows(rows(...names));
    expect(result.skipped).toEqual([]);
    expect(result.brands.map((brand) => brand.name)).toEqual(names);
  });

  it('strips invisible bidi and zero-width characters from the name', () => {
    expect(validateBrandRows(rows('\u202EAcme\u202C\u200B')).brands[0]?.name).toBe('Acme');
  });

  it('with a limit, keeps the first N valid brands and stops reporting after the Nth', () => {
    const result = validateBrandRows(rows('A', '', 'A', 'B', '', 'C', 'A'), { limit: 2 });
    expect(result.brands.map((brand) => brand.rowNumber)).toEqual([2, 5]);
    expect(result.skipped.map((row) => [row.rowNumber, row.reason])).toEqual([
      [3, 'empty_name'],
      [4, 'duplicate'],
    ]);
  });

  it('with limit 0, returns nothing', () => {
    expect(validateBrandRows(rows('A'), { limit: 0 })).toEqual({ brands: [], skipped: [] });
  });

  it('refuses a negative or fractional limit', () => {
    expect(() => validateBrandRows(rows('A'), { limit: -1 })).toThrow(ConfigError);
    expect(() => validateBrandRows(rows('A'), { limit: 1.5 })).toThrow(/limit must be a whole number/);
  });

  it('drops control characters from hints but keeps line breaks', () => {
    const result = validateBrandRows([{ rowNumber: 2, name: 'A', hints: { notes: 'line1\nline2\u0007', x: '\u0000' } }]);
    expect(result.brands[0]?.hints).toEqual({ notes: 'line1\nline2' });
  });
});
