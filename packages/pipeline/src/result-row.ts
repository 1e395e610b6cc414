import { columnIndex, columnLetter, neutralizeCell } from '@brandq/input';
import type { BrandResult } from '@brandq/runs';

/** The columns a result occupies, in order, in exports and in the sheet. */
export const RESULT_COLUMNS = ['website', 'category', 'description', 'country', 'founded_year', 'sources'] as const;

export function resultCells(result: BrandResult): string[] {
  return [
    result.website ?? '',
    result.category ?? '',
    result.description ?? '',
    result.country ?? '',
    result.founded_year === null ? '' : String(result.founded_year),
    result.sources.join(' '),
  ].map(neutralizeCell);
}

/** A1 range of one brand's result cells, e.g. `'Brands'!B7:G7`. */
export function resultRange(sheetTitle: string, resultColumn: string, rowNumber: number): string {
  const first = columnIndex(resultColumn);
  const last = columnLetter(first + RESULT_COLUMNS.length - 1);
  return `'${sheetTitle.replace(/'/g, "''")}'!${resultColumn}${rowNumber}:${last}${rowNumber}`;
}
