import { SheetGrid } from './sheet-grid.js';

/** In-memory spreadsheets: id -> tabs in creation order (the first tab answers ranges without a sheet name). */
export class SpreadsheetStore {
  private readonly books = new Map<string, Map<string, SheetGrid>>();
  private nextSheetId = 1;

  /** Creates or replaces a tab (creating the spreadsheet as needed). */
  setSheet(spreadsheetId: string, title: string, rows: readonly (readonly string[])[]): SheetGrid {
    let book = this.books.get(spreadsheetId);
    if (!book) {
      book = new Map();
      this.books.set(spreadsheetId, book);
    }
    const existing = book.get(title);
    // Sheet ids start at 0 for the first tab like real spreadsheets; later tabs get fresh ids.
    const sheetId = existing?.sheetId ?? (book.size === 0 ? 0 : this.nextSheetId++);
    const grid = new SheetGrid(title, sheetId, rows);
    book.set(title, grid);
    return grid;
  }

  has(spreadsheetId: string): boolean {
    return this.books.has(spreadsheetId);
  }

  /** The named tab, or the first tab for `null`. */
  sheet(spreadsheetId: string, title: string | null): SheetGrid | undefined {
    const book = this.books.get(spreadsheetId);
    if (!book) return undefined;
    if (title === null) return book.values().next().value;
    return book.get(title);
  }

  sheets(spreadsheetId: string): SheetGrid[] {
    return [...(this.books.get(spreadsheetId)?.values() ?? [])];
  }

  clear(): void {
    this.books.clear();
  }
}
