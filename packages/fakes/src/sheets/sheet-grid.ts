import { columnLetters, formatA1, quoteSheetTitle, type A1Range } from './a1.js';

/** A JSON cell value as clients send it; null leaves the cell unchanged, as in the real API. */
export type CellInput = string | number | boolean | null;

export interface WriteResult {
  updatedRange: string;
  updatedRows: number;
  updatedColumns: number;
  updatedCells: number;
  /** At least one value was stored as a formula (USER_ENTERED and starting with '='). */
  formulaWritten: boolean;
}

/** Sheets' default grid for a new sheet; data beyond it grows the grid. */
const DEFAULT_ROWS = 1000;
const DEFAULT_COLS = 26;

export class WriteOutOfRangeError extends Error {}
export class GridLimitError extends Error {}

/** One tab: a ragged grid of strings ('' = empty) plus which cells hold formulas. */
export class SheetGrid {
  private cells: string[][] = [];
  private readonly formulas = new Set<string>();

  constructor(
    readonly title: string,
    readonly sheetId: number,
    rows: readonly (readonly string[])[] = [],
  ) {
    this.cells = rows.map((r) => [...r]);
  }

  get rowCount(): number {
    return Math.max(DEFAULT_ROWS, this.cells.length);
  }

  get columnCount(): number {
    return Math.max(DEFAULT_COLS, ...this.cells.map((r) => r.length));
  }

  /** Values inside `range`, trailing empty cells and rows dropped, interior empty rows kept as []. */
  read(range: A1Range): { range: string; values: string[][] } {
    const b = this.bounds(range);
    if (b.startRow > b.endRow || b.startCol > b.endCol) {
      throw new GridLimitError(
        `Range (${quoteSheetTitle(this.title)}!${columnLetters(b.startCol)}${b.startRow + 1}) exceeds grid limits. Max rows: ${this.rowCount}, max columns: ${this.columnCount}`,
      );
    }
    const values: string[][] = [];
    for (let r = b.startRow; r <= b.endRow && r < this.cells.length; r++) {
      const row = (this.cells[r] ?? []).slice(b.startCol, b.endCol + 1);
      while (row.length > 0 && row[row.length - 1] === '') row.pop();
      values.push(row);
    }
    while (values.length > 0 && values[values.length - 1]?.length === 0) values.pop();
    return { range: formatA1(this.title, b.startRow, b.startCol, b.endRow, b.endCol), values };
  }

  /** Every non-empty value, ragged, as `read` of the whole sheet. */
  allValues(): string[][] {
    return this.read({ sheet: this.title, startRow: null, startCol: null, endRow: null, endCol: null }).values;
  }

  /** Throws WriteOutOfRangeError when `values` do not fit a bounded range (checked before any write of a batch). */
  assertFits(range: A1Range, values: readonly (readonly CellInput[])[]): void {
    const width = Math.max(0, ...values.map((r) => r.length));
    const lastRow = (range.startRow ?? 0) + values.length - 1;
    const lastCol = (range.startCol ?? 0) + width - 1;
    const requested = this.describe(range);
    if (range.endRow !== null && values.length > 0 && lastRow > range.endRow) {
      throw new WriteOutOfRangeError(`Requested writing within range [${requested}], but tried writing to row [${lastRow + 1}]`);
    }
    if (range.endCol !== null && width > 0 && lastCol > range.endCol) {
      throw new WriteOutOfRangeError(`Requested writing within range [${requested}], but tried writing to column [${lastCol + 1}]`);
    }
  }

  write(range: A1Range, values: readonly (readonly CellInput[])[], userEntered: boolean): WriteResult {
    this.assertFits(range, values);
    const startRow = range.startRow ?? 0;
    const startCol = range.startCol ?? 0;
    const width = Math.max(0, ...values.map((r) => r.length));
    const lastRow = startRow + values.length - 1;
    const lastCol = startCol + width - 1;
    let updatedCells = 0;
    let formulaWritten = false;
    const rowsTouched = new Set<number>();
    const colsTouched = new Set<number>();
    values.forEach((row, i) => {
      row.forEach((value, j) => {
        if (value === null) return;
        const r = startRow + i;
        const c = startCol + j;
        const text = typeof value === 'boolean' ? (value ? 'TRUE' : 'FALSE') : String(value);
        this.set(r, c, text);
        const isFormula = userEntered && text.startsWith('=');
        if (isFormula) this.formulas.add(`${r},${c}`);
        else this.formulas.delete(`${r},${c}`);
        formulaWritten ||= isFormula;
        updatedCells++;
        rowsTouched.add(r);
        colsTouched.add(c);
      });
    });
    return {
      updatedRange:
        values.length > 0 && width > 0 ? formatA1(this.title, startRow, startCol, lastRow, lastCol) : this.describe(range),
      updatedRows: rowsTouched.size,
      updatedColumns: colsTouched.size,
      updatedCells,
      formulaWritten,
    };
  }

  /** First row index after the last row holding data in the range's columns (for append). */
  nextFreeRow(range: A1Range): number {
    const b = this.bounds({ ...range, endRow: null });
    let last = b.startRow - 1;
    for (let r = b.startRow; r < this.cells.length; r++) {
      const row = this.cells[r] ?? [];
      if (row.slice(b.startCol, b.endCol + 1).some((v) => v !== '')) last = r;
    }
    return last + 1;
  }

  /** A1 references of cells holding formulas, e.g. ["C2"]. */
  formulaCells(): string[] {
    return [...this.formulas].map((key) => {
      const [r, c] = key.split(',').map(Number);
      return formatA1(this.title, r ?? 0, c ?? 0, r ?? 0, c ?? 0).split('!')[1] ?? '';
    });
  }

  private set(r: number, c: number, text: string): void {
    while (this.cells.length <= r) this.cells.push([]);
    const row = this.cells[r] ?? [];
    while (row.length <= c) row.push('');
    row[c] = text;
    this.cells[r] = row;
  }

  private bounds(range: A1Range): { startRow: number; startCol: number; endRow: number; endCol: number } {
    return {
      startRow: range.startRow ?? 0,
      startCol: range.startCol ?? 0,
      endRow: Math.min(range.endRow ?? this.rowCount - 1, this.rowCount - 1),
      endCol: Math.min(range.endCol ?? this.columnCount - 1, this.columnCount - 1),
    };
  }

  private describe(range: A1Range): string {
    const b = this.bounds(range);
    return formatA1(this.title, b.startRow, b.startCol, b.endRow, b.endCol);
  }
}
