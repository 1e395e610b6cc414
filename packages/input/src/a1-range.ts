import { BadInputError } from '@brandq/errors';

/** A range in A1 notation, as `spreadsheets.values.get` takes and returns it. */
export interface A1Range {
  /** Unquoted sheet name; absent when the range names no sheet (the first sheet). */
  sheet?: string;
  /** Upper-case column letters; `A` when the range names rows only (`2:10`). */
  startColumn: string;
  /** 1-based; 1 when the range names whole columns (`A:C`). */
  startRow: number;
  endColumn?: string;
  endRow?: number;
}

/** Google Sheets allows at most 18,278 columns, i.e. up to `ZZZ`. */
const MAX_COLUMN_LETTERS = 3;
const CELL = /^([A-Za-z]{1,3})?([1-9]\d*)?$/;

/**
 * Parses `Brands!A2:C`, `'My Sheet'!B5:B`, `'It''s'!A1`, `A:C`, `2:10`, `A1` or a bare
 * sheet name. Throws `BadInputError`: the range comes from the user's command line.
 */
export function parseA1Range(range: string): A1Range {
  const { sheet, cells } = splitSheetName(range.trim());
  if (cells === undefined) return { sheet, startColumn: 'A', startRow: 1 };

  const [startText = '', endText, ...extra] = cells.split(':');
  const start = CELL.exec(startText);
  const end = endText === undefined ? undefined : CELL.exec(endText);
  const startIsEmpty = start?.[1] === undefined && start?.[2] === undefined;
  if (start === null || startIsEmpty || end === null || extra.length > 0) {
    throw new BadInputError(`Invalid range "${range}": expected A1 notation such as Brands!A2:C`, {
      details: { range },
    });
  }
  const parsed: A1Range = {
    startColumn: (start[1] ?? 'A').toUpperCase(),
    startRow: start[2] === undefined ? 1 : Number(start[2]),
  };
  if (sheet !== undefined) parsed.sheet = sheet;
  if (end?.[1] !== undefined) parsed.endColumn = end[1].toUpperCase();
  if (end?.[2] !== undefined) parsed.endRow = Number(end[2]);
  return parsed;
}

function splitSheetName(range: string): { sheet?: string; cells?: string } {
  const quoted = /^'((?:[^']|'')+)'(?:!(.*))?$/s.exec(range);
  if (quoted) return { sheet: quoted[1]?.replace(/''/g, "'"), cells: quoted[2] };
  const bang = range.lastIndexOf('!');
  if (bang >= 0) return { sheet: range.slice(0, bang), cells: range.slice(bang + 1) };
  // Without `!`, a lone token is a cell range only if it looks like one ("A1", "A:C", "2:5").
  return CELL.test(range.split(':')[0] ?? '') && /\d|:/.test(range) ? { cells: range } : { sheet: range };
}

/** 0 -> `A`, 25 -> `Z`, 26 -> `AA`. */
export function columnLetter(indexFromZero: number): string {
  if (!Number.isSafeInteger(indexFromZero) || indexFromZero < 0) {
    throw new RangeError(`column index must be a whole number >= 0, got ${indexFromZero}`);
  }
  let letters = '';
  for (let rest = indexFromZero + 1; rest > 0; rest = Math.floor((rest - 1) / 26)) {
    letters = String.fromCharCode(65 + ((rest - 1) % 26)) + letters;
  }
  return letters;
}

/** `A` -> 0, `z` -> 25, `AA` -> 26: the inverse of `columnLetter`. */
export function columnIndex(letter: string): number {
  if (!/^[A-Za-z]+$/.test(letter) || letter.length > MAX_COLUMN_LETTERS) {
    throw new RangeError(`"${letter}" is not a column letter (A to ZZZ)`);
  }
  let index = 0;
  for (const character of letter.toUpperCase()) index = index * 26 + (character.charCodeAt(0) - 64);
  return index - 1;
}
