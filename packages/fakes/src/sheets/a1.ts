/**
 * A parsed A1 range. Rows and columns are 0-based and inclusive; null bounds
 * are open (`A2:C` has no endRow, `A:C` no rows at all, a bare sheet name no bounds).
 */
export interface A1Range {
  /** null: the request named no sheet, which means the first sheet. */
  sheet: string | null;
  startRow: number | null;
  startCol: number | null;
  endRow: number | null;
  endCol: number | null;
}

interface CellRef {
  col: number | null;
  row: number | null;
}

export class A1ParseError extends Error {}

export function columnIndex(letters: string): number {
  let n = 0;
  for (const ch of letters.toUpperCase()) n = n * 26 + (ch.charCodeAt(0) - 64);
  return n - 1;
}

export function columnLetters(index: number): string {
  let n = index + 1;
  let out = '';
  while (n > 0) {
    const rem = (n - 1) % 26;
    out = String.fromCharCode(65 + rem) + out;
    n = Math.floor((n - 1) / 26);
  }
  return out;
}

function parseCell(text: string): CellRef | null {
  const m = /^([A-Za-z]{0,3})(\d*)$/.exec(text);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  const row = m[2] ? Number(m[2]) : null;
  if (row === 0) return null;
  return { col: m[1] ? columnIndex(m[1]) : null, row: row === null ? null : row - 1 };
}

/** Cell part of a range (`A1`, `A2:C`, `A:C`, `2:5`), or null if it is not one. */
function parseCells(text: string): Omit<A1Range, 'sheet'> | null {
  const [first, second, extra] = text.split(':');
  if (first === undefined || extra !== undefined) return null;
  const start = parseCell(first);
  if (!start) return null;
  if (second === undefined) {
    // A bare column or row alone is not a range Sheets accepts.
    if (start.col === null || start.row === null) return null;
    return { startRow: start.row, startCol: start.col, endRow: start.row, endCol: start.col };
  }
  const end = parseCell(second);
  if (!end) return null;
  // Whole rows (`2:5`) need rows on both sides, whole columns (`A:C`) columns on both.
  if (start.col === null && (end.col !== null || start.row === null)) return null;
  if (start.row === null && start.col === null) return null;
  const range = {
    startRow: start.row,
    startCol: start.col,
    endRow: end.row,
    endCol: end.col,
  };
  if (range.startRow === null && range.endRow !== null) return null;
  if (range.startRow !== null && range.endRow !== null && range.endRow < range.startRow) return null;
  if (range.startCol !== null && range.endCol !== null && range.endCol < range.startCol) return null;
  return range;
}

function unquote(text: string): string | null {
  if (!text.startsWith("'")) return text;
  if (text.length < 2 || !text.endsWith("'")) return null;
  const inner = text.slice(1, -1);
  // A lone quote inside a quoted name must be doubled.
  if (inner.replace(/''/g, '').includes("'")) return null;
  return inner.replace(/''/g, "'");
}

/** Parses `Sheet1!A2:C`, `'My Sheet'!A:A`, `A1:B2`, `'Sheet'`, `Sheet1`. Throws A1ParseError. */
export function parseA1(text: string): A1Range {
  const trimmed = text.trim();
  if (trimmed === '') throw new A1ParseError(`Unable to parse range: ${text}`);
  const bang = trimmed.lastIndexOf('!');
  if (bang >= 0) {
    const sheet = unquote(trimmed.slice(0, bang));
    const cells = parseCells(trimmed.slice(bang + 1));
    if (sheet === null || sheet === '' || !cells) throw new A1ParseError(`Unable to parse range: ${text}`);
    return { sheet, ...cells };
  }
  if (!trimmed.startsWith("'")) {
    const cells = parseCells(trimmed);
    if (cells) return { sheet: null, ...cells };
  }
  const sheet = unquote(trimmed);
  if (sheet === null || sheet === '') throw new A1ParseError(`Unable to parse range: ${text}`);
  return { sheet, startRow: null, startCol: null, endRow: null, endCol: null };
}

/** Sheet title as Sheets prints it in ranges: quoted unless a plain identifier that cannot be read as a cell. */
export function quoteSheetTitle(title: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(title) && !/^[A-Za-z]{1,3}\d+$/.test(title)) return title;
  return `'${title.replace(/'/g, "''")}'`;
}

export function formatA1(title: string, startRow: number, startCol: number, endRow: number, endCol: number): string {
  const start = `${columnLetters(startCol)}${startRow + 1}`;
  const end = `${columnLetters(endCol)}${endRow + 1}`;
  return `${quoteSheetTitle(title)}!${start === end ? start : `${start}:${end}`}`;
}
