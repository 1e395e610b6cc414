import { columnIndex, columnLetter, neutralizeCell } from '@brandq/input';
import { fieldText, type RecipeField } from '@brandq/recipe';
import type { BrandResult } from '@brandq/runs';

/** A brand's result as sheet cells, one per field of the recipe, in its order; never a formula. */
export function resultCells(fields: readonly RecipeField[], result: BrandResult): string[] {
  return fields.map((f) => neutralizeCell(fieldText(f, result.fields[f.name])));
}

/** The result columns' header cells: the recipe's field names. */
export function headerCells(fields: readonly RecipeField[]): string[] {
  return fields.map((f) => neutralizeCell(f.name));
}

/** A1 range of one row's `width` result cells from `resultColumn`, e.g. `'Brands'!B7:G7`. */
export function resultRange(sheetTitle: string, resultColumn: string, rowNumber: number, width: number): string {
  const first = columnIndex(resultColumn);
  const last = columnLetter(first + Math.max(1, width) - 1);
  return `'${sheetTitle.replace(/'/g, "''")}'!${resultColumn}${rowNumber}:${last}${rowNumber}`;
}
