import { BadInputError } from '@brandq/errors';
import { columnIndex, parseA1Range } from './a1-range.js';
import type { BrandList, BrandListOptions, SourceRow } from './brand-list.js';
import { findBrandColumn, tableToSourceRows } from './brand-table.js';
import { validateBrandRows } from './validate-brand-rows.js';

/**
 * A cell of a `values.get` answer: strings with the default FORMATTED_VALUE render option,
 * numbers or booleans with UNFORMATTED_VALUE.
 */
export type SheetCell = string | number | boolean | null | undefined;

export interface SheetValuesOptions extends BrandListOptions {
  /** The range the values were read from, e.g. `Brands!A2:C`; row numbers start at its first row. */
  range: string;
  /** Whether the range's first row is a header naming the columns. Default false. */
  hasHeader?: boolean;
  /**
   * With a header: the brand column's header (default brand, brand_name, name).
   * Without: its column letter (default the range's first column); other columns are ignored.
   */
  column?: string;
}

/**
 * Turns a `spreadsheets.values.get` answer into brands. The API omits trailing empty cells
 * and rows and returns blank rows inside the range as `[]`, so rows are numbered by
 * position from the range's start row, never by counting non-empty rows.
 */
export function brandsFromSheetValues(values: readonly (readonly SheetCell[])[], options: SheetValuesOptions): BrandList {
  const { startRow, startColumn } = parseA1Range(options.range);
  const source = `Sheet range ${options.range}`;
  const records = values.map((row) => row.map(cellText));

  if (options.hasHeader === true) {
    const [headers, ...rows] = records;
    if (headers === undefined || headers.every((cell) => cell.trim() === '')) {
      throw new BadInputError(`${source} has no header row: its first row must name the columns`, {
        details: { source },
      });
    }
    const brandColumn = findBrandColumn(headers, options.column, source);
    return validateBrandRows(tableToSourceRows(headers, rows, brandColumn, startRow + 1), options);
  }

  const brandColumn = brandColumnByLetter(options.column, startColumn, source);
  const rows: SourceRow[] = records.map((row, offset) => ({ rowNumber: startRow + offset, name: row[brandColumn] }));
  return validateBrandRows(rows, options);
}

function brandColumnByLetter(column: string | undefined, startColumn: string, source: string): number {
  if (column === undefined) return 0;
  const offset = /^[A-Za-z]{1,3}$/.test(column) ? columnIndex(column) - columnIndex(startColumn) : -1;
  if (offset < 0) {
    throw new BadInputError(
      `${source} has no header row, so the brand column must be a column letter inside the range, got "${column}"`,
      { details: { source, column } },
    );
  }
  return offset;
}

function cellText(cell: SheetCell): string {
  return cell === null || cell === undefined ? '' : String(cell);
}
