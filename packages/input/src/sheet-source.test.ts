import { BadInputError } from '@brandq/errors';
import { describe, expect, it } from 'vitest';
import { normalizeBrandKey } from './brand-key.js';
import { brandsFromSheetValues } from './sheet-source.js';

describe('brandsFromSheetValues', () => {
  it('numbers rows from the start row of the range', () => {
    const { brands } = brandsFromSheetValues([['Nike'], ['Adidas']], { range: 'Brands!A2:A' });
    expect(brands).toEqual([
      { key: normalizeBrandKey('Nike'), name: 'Nike', rowNumber: 2, hints: {} },
      { key: normalizeBrandKey('Adidas'), name: 'Adidas', rowNumber: 3, hints: {} },
    ]);
  });

  it('counts the empty rows the API returns as [] inside the range', () => {
    const { brands, skipped } = brandsFromSheetValues([['Nike'], [], ['Adidas']], { range: "'My Sheet'!B5:B" });
    expect(brands.map((brand) => brand.rowNumber)).toEqual([5, 7]);
    expect(skipped).toEqual([{ rowNumber: 6, reason: 'empty_name', message: 'Row 6: brand name is empty' }]);
  });

  it('with a header, finds the brand column by name and reads the other columns as hints', () => {
    const values = [
      ['Website', 'Brand', 'Country'],
      ['nike.com', 'Nike', 'US'],
      ['', 'Adidas'], // trailing empty cells are omitted by the API
      ['lush.com'],
    ];
    const { brands, skipped } = brandsFromSheetValues(values, { range: 'Brands!A1:C', hasHeader: true });
    expect(brands).toEqual([
      { key: normalizeBrandKey('Nike'), name: 'Nike', rowNumber: 2, hints: { website: 'nike.com', country: 'US' } },
      { key: normalizeBrandKey('Adidas'), name: 'Adidas', rowNumber: 3, hints: {} },
    ]);
    expect(skipped).toEqual([{ rowNumber: 4, reason: 'empty_name', message: 'Row 4: brand name is empty' }]);
  });

  it('applies the shared rules: duplicates point at the first row', () => {
    const { skipped } = brandsFromSheetValues([['Acme'], ['  ACME '], ['Ａｃｍｅ']], { range: 'A10:A' });
    expect(skipped.map((row) => row.message)).toEqual([
      'Row 11: "ACME" duplicates row 10',
      'Row 12: "Ａｃｍｅ" duplicates row 10',
    ]);
  });

  it('without a header, takes the brand from a column letter inside the range', () => {
    const values = [['1', 'Nike', 'x'], ['2', 'Adidas']];
    const { brands } = brandsFromSheetValues(values, { range: 'Brands!B3:D', column: 'c' });
    expect(brands.map((brand) => [brand.rowNumber, brand.name])).toEqual([
      [3, 'Nike'],
      [4, 'Adidas'],
    ]);
  });

  it('reads numbers and booleans from UNFORMATTED_VALUE answers as text', () => {
    const { brands } = brandsFromSheetValues([[7], [true], [null]], { range: 'A2:A' });
    expect(brands.map((brand) => brand.name)).toEqual(['7', 'true']);
  });

  it('honours the limit', () => {
    const { brands } = brandsFromSheetValues([['A'], ['B'], ['C']], { range: 'A2:A', limit: 2 });
    expect(brands.map((brand) => brand.name)).toEqual(['A', 'B']);
  });

  it('returns nothing for an empty answer without a header', () => {
    expect(brandsFromSheetValues([], { range: 'Brands!A2:A' })).toEqual({ brands: [], skipped: [] });
  });

  it('fails on a missing header, a missing brand column, a column outside the range or a bad range', () => {
    expect(() => brandsFromSheetValues([], { range: 'Brands!A1:C', hasHeader: true })).toThrow(
      'Sheet range Brands!A1:C has no header row: its first row must name the columns',
    );
    expect(() => brandsFromSheetValues([['Company', 'Site']], { range: 'Brands!A1:B', hasHeader: true })).toThrow(
      'Sheet range Brands!A1:B has no brand column (expected one of brand, brand_name, name, or name one with the column option); ' +
        'headers found: "Company", "Site"',
    );
    expect(() => brandsFromSheetValues([['Nike']], { range: 'Brands!C2:D', column: 'B' })).toThrow(
      'Sheet range Brands!C2:D has no header row, so the brand column must be a column letter inside the range, got "B"',
    );
    expect(() => brandsFromSheetValues([['Nike']], { range: 'Brands!C2:D', column: 'Brand' })).toThrow(BadInputError);
    expect(() => brandsFromSheetValues([['Nike']], { range: 'Brands!' })).toThrow(BadInputError);
  });
});
