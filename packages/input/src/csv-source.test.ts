import { fileURLToPath } from 'node:url';
import { BadInputError } from '@brandq/errors';
import { describe, expect, it } from 'vitest';
import { normalizeBrandKey } from './brand-key.js';
import { parseCsvBrands, readCsvBrands } from './csv-source.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

/** The BadInputError a promise rejects with, so a test can check its message exactly. */
async function rejection(promise: Promise<unknown>): Promise<BadInputError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(BadInputError);
  return error as BadInputError;
}

describe('readCsvBrands', () => {
  it('reads brands with their hint columns, header names as snake_case', async () => {
    const { brands, skipped } = await readCsvBrands(fixture('brands-with-hints.csv'));
    expect(skipped).toEqual([]);
    expect(brands).toEqual([
      { key: normalizeBrandKey('Nike'), name: 'Nike', rowNumber: 2, hints: { website: 'https://www.nike.com', country: 'US' } },
      { key: normalizeBrandKey('Adidas'), name: 'Adidas', rowNumber: 3, hints: { country: 'DE', notes_field: 'three stripes' } },
      {
        key: normalizeBrandKey('Lush Cosmetics'),
        name: 'Lush Cosmetics',
        rowNumber: 4,
        hints: { website: 'lush.com', notes_field: 'handmade, fresh' },
      },
    ]);
  });

  it('handles a BOM, CRLF, quoted commas and quotes, multi-line cells and short rows', async () => {
    const { brands, skipped } = await readCsvBrands(fixture('bom-crlf-quoted.csv'));
    expect(skipped).toEqual([]);
    // The multi-line cell is one spreadsheet row, so "Short Row" is row 5, not 6.
    expect(brands.map(({ name, rowNumber, hints }) => ({ name, rowNumber, hints }))).toEqual([
      { name: 'Procter & Gamble, Co.', rowNumber: 2, hints: { website: 'pg.com', country: 'US' } },
      { name: 'Ben "n" Jerry"s', rowNumber: 3, hints: { website: 'benjerry.com' } },
      { name: 'Multi Line', rowNumber: 4, hints: { website: 'multi.example', country: 'FR' } },
      { name: 'Short Row', rowNumber: 5, hints: {} },
    ]);
  });

  it('applies every row rule with the row numbers the user sees', async () => {
    const { brands, skipped } = await readCsvBrands(fixture('bad-rows.csv'));
    expect(brands.map((brand) => [brand.rowNumber, brand.name])).toEqual([
      [2, 'Acme'],
      [7, 'Blue Bottle Coffee'],
      [11, 'مطعم الشام'],
      [12, '🍕 Pizza Express'],
      [13, '=HYPERLINK("http://x","y")'],
      [14, '👩‍💻 Studio'],
      [16, `${'A'.repeat(199)}😀`],
      [19, 'Zeta'],
    ]);
    expect(skipped.map((row) => [row.rowNumber, row.reason, row.message])).toEqual([
      [3, 'empty_name', 'Row 3: brand name is empty'],
      [4, 'empty_name', 'Row 4: brand name is empty'],
      [5, 'duplicate', 'Row 5: "ACME" duplicates row 2'],
      [6, 'duplicate', 'Row 6: "Ａｃｍｅ" duplicates row 2'],
      [8, 'duplicate', 'Row 8: "blue bottle coffee" duplicates row 7'],
      [9, 'too_long', 'Row 9: brand name is 250 characters long; the limit is 200'],
      [10, 'invalid_characters', 'Row 10: brand name contains the control character U+0007'],
      [15, 'duplicate', 'Row 15: "Acme" duplicates row 2'],
      [17, 'invalid_characters', 'Row 17: brand name contains the control character U+001B'],
      [18, 'empty_name', 'Row 18: brand name is empty'],
    ]);
  });

  it('with a limit, stops after the Nth valid brand', async () => {
    const { brands, skipped } = await readCsvBrands(fixture('bad-rows.csv'), { limit: 2 });
    expect(brands.map((brand) => brand.rowNumber)).toEqual([2, 7]);
    expect(skipped.map((row) => row.rowNumber)).toEqual([3, 4, 5, 6]);
  });

  it('uses an explicitly named column, matched as snake_case', async () => {
    const { brands } = await readCsvBrands(fixture('missing-brand-column.csv'), { column: 'company' });
    expect(brands).toEqual([
      { key: normalizeBrandKey('Acme'), name: 'Acme', rowNumber: 2, hints: { website_url: 'acme.com' } },
    ]);
  });

  it('fails with a one-line message when the file is missing', async () => {
    const error = await rejection(readCsvBrands('/nonexistent/brands.csv'));
    expect(error.message).toBe('CSV file not found: /nonexistent/brands.csv');
    expect(error.retryable).toBe(false);
  });

  it('fails when the path is a directory', async () => {
    const directory = fileURLToPath(new URL('../fixtures', import.meta.url));
    expect((await rejection(readCsvBrands(directory))).message).toBe(`CSV path is a directory, not a file: ${directory}`);
  });

  it('fails when the brand column is missing, listing the headers found', async () => {
    const path = fixture('missing-brand-column.csv');
    expect((await rejection(readCsvBrands(path))).message).toBe(
      `CSV file ${path} has no brand column (expected one of brand, brand_name, name, or name one with the column option); ` +
        'headers found: "Company", "Website URL"',
    );
    expect((await rejection(readCsvBrands(path, { column: 'Label' }))).message).toBe(
      `CSV file ${path} has no column "Label"; headers found: "Company", "Website URL"`,
    );
  });

  it('suggests the delimiter when the header is one semicolon-separated cell', async () => {
    const path = fixture('semicolon-delimited.csv');
    expect((await rejection(readCsvBrands(path))).message).toMatch(
      /headers found: "brand;website" \(is the file delimited by something other than commas\?\)$/,
    );
  });

  it('fails on malformed quoting with the line number', async () => {
    const path = fixture('malformed-quoting.csv');
    const error = await rejection(readCsvBrands(path));
    expect(error.message).toBe(
      `CSV file ${path} is not valid CSV at line 3: a quote inside an unquoted field ` +
        '(quote the whole field and double the inner quotes)',
    );
    expect(error.details).toMatchObject({ line: 3, csvError: 'INVALID_OPENING_QUOTE' });
  });

  it('fails on an empty file', async () => {
    const path = fixture('empty.csv');
    expect((await rejection(readCsvBrands(path))).message).toBe(
      `CSV file ${path} has no header row: the first line must name the columns, e.g. "brand,website"`,
    );
  });

  it('refuses files that are not UTF-8 instead of reading mojibake', async () => {
    const latin1 = fixture('windows-1252.csv');
    expect((await rejection(readCsvBrands(latin1))).message).toBe(
      `CSV file ${latin1} is not UTF-8: save it as "CSV UTF-8" and try again`,
    );
    const utf16 = fixture('utf16.csv');
    expect((await rejection(readCsvBrands(utf16))).message).toBe(
      `CSV file ${utf16} is not UTF-8 (it is UTF-16): save it as "CSV UTF-8" and try again`,
    );
  });
});

describe('parseCsvBrands', () => {
  it('parses in-memory text with the default brand columns in priority order', () => {
    // "brand" wins over "name" wherever it is; "name" then is just a hint.
    const { brands } = parseCsvBrands('name,Brand\nNike Inc,Nike\n');
    expect(brands).toEqual([{ key: normalizeBrandKey('Nike'), name: 'Nike', rowNumber: 2, hints: { name: 'Nike Inc' } }]);
    expect(parseCsvBrands('Brand Name\nNike\n').brands[0]?.name).toBe('Nike');
  });

  it('counts blank lines inside the file as rows but ignores blank lines at the end', () => {
    const { brands, skipped } = parseCsvBrands('brand\r\nA\r\n\r\nB\r\n\r\n\r\n');
    expect(brands.map((brand) => brand.rowNumber)).toEqual([2, 4]);
    expect(skipped).toEqual([{ rowNumber: 3, reason: 'empty_name', message: 'Row 3: brand name is empty' }]);
  });

  it('names the source in errors, and reports an unclosed quote at the line where it opens', () => {
    const unclosed = () => parseCsvBrands('brand\n"Multi\nLine"\n\n"B\nC\n', { source: 'upload.csv' });
    expect(unclosed).toThrow(BadInputError);
    expect(unclosed).toThrow('upload.csv is not valid CSV at line 5: a quoted field is never closed');
    expect(() => parseCsvBrands('"brand\nA\n')).toThrow('CSV input is not valid CSV at line 1: a quoted field is never closed');
    expect(() => parseCsvBrands('brand\n"A"x\n')).toThrow(
      'CSV input is not valid CSV at line 2: unexpected text after the closing quote of a field',
    );
  });

  it('fails when the header row is blank', () => {
    expect(() => parseCsvBrands(' , \nAcme\n')).toThrow(/^CSV input has no header row/);
  });

  it('ignores hint columns with a blank header and keeps the leftmost of two same-named ones', () => {
    const { brands } = parseCsvBrands('brand,,Country,country\nAcme,x,FR,DE\n');
    expect(brands[0]?.hints).toEqual({ country: 'FR' });
  });
});
