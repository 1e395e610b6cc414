import { BadInputError } from '@brandq/errors';
import type { SourceRow } from './brand-list.js';
import { toSnakeCase } from './header-name.js';

/** Headers tried, in this order, when the caller does not name the brand column. */
export const DEFAULT_BRAND_COLUMNS = ['brand', 'brand_name', 'name'] as const;

/**
 * Index of the brand column in `headers`. An explicit `column` and the headers are
 * compared as snake_case, so `--column "Brand Name"` finds `brand_name` and vice versa.
 */
export function findBrandColumn(headers: readonly string[], column: string | undefined, source: string): number {
  const names = headers.map(toSnakeCase);
  const wanted = column === undefined ? DEFAULT_BRAND_COLUMNS : [toSnakeCase(column)];
  for (const candidate of wanted) {
    const index = names.indexOf(candidate);
    if (index >= 0 && candidate !== '') return index;
  }
  const found = headers.filter((header) => header.trim() !== '').map((header) => `"${header.trim()}"`);
  const foundText = found.length > 0 ? found.join(', ') : 'none';
  // A one-column header holding ';' or tabs usually means another delimiter, not a missing column.
  const delimiterHint =
    found.length === 1 && /[;\t|]/.test(headers.join('')) ? ' (is the file delimited by something other than commas?)' : '';
  const expected =
    column === undefined
      ? `no brand column (expected one of ${DEFAULT_BRAND_COLUMNS.join(', ')}, or name one with the column option)`
      : `no column "${column}"`;
  throw new BadInputError(`${source} has ${expected}; headers found: ${foundText}${delimiterHint}`, {
    details: { source, headers: headers.map((header) => header.trim()), column },
  });
}

/**
 * Turns a header plus data rows into source rows: the brand cell becomes the name, every
 * other named column a hint. Columns with a blank header are ignored (nothing to call the
 * hint); when two headers share a snake_case name, the leftmost wins.
 */
export function tableToSourceRows(
  headers: readonly string[],
  records: readonly (readonly string[])[],
  brandColumn: number,
  firstRowNumber: number,
): SourceRow[] {
  const hintColumns = new Map<string, number>();
  headers.forEach((header, index) => {
    const hint = toSnakeCase(header);
    if (index !== brandColumn && hint !== '' && !hintColumns.has(hint)) hintColumns.set(hint, index);
  });
  return records.map((record, offset) => {
    const hints: Record<string, string | undefined> = {};
    for (const [hint, index] of hintColumns) hints[hint] = record[index];
    return { rowNumber: firstRowNumber + offset, name: record[brandColumn], hints };
  });
}
