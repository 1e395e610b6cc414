import { readFile } from 'node:fs/promises';
import { BadInputError } from '@brandq/errors';
import { CsvError, parse } from 'csv-parse/sync';
import type { BrandList, BrandListOptions } from './brand-list.js';
import { findBrandColumn, tableToSourceRows } from './brand-table.js';
import { validateBrandRows } from './validate-brand-rows.js';

export interface CsvBrandOptions extends BrandListOptions {
  /** Header of the brand column; default: the first of brand, brand_name, name (any case). */
  column?: string;
}

export interface ParseCsvOptions extends CsvBrandOptions {
  /** How messages name the input, e.g. its path. */
  source?: string;
}

/** Reads a UTF-8 CSV file with a header row. Whole-file problems throw `BadInputError`. */
export async function readCsvBrands(path: string, options: CsvBrandOptions = {}): Promise<BrandList> {
  const bytes = await readCsvFile(path);
  return parseCsvBrands(decodeUtf8(bytes, path), { ...options, source: `CSV file ${path}` });
}

/**
 * Parses CSV text. Row numbers are records as a spreadsheet app shows them (header = row 1,
 * blank lines count, a quoted multi-line cell is one row), so they match what the user sees
 * when opening the file.
 */
export function parseCsvBrands(text: string, options: ParseCsvOptions = {}): BrandList {
  const source = options.source ?? 'CSV input';
  const records = parseRecords(text, source);
  // Blank lines at the very end are editor noise, not rows anyone meant to add.
  while (records.length > 0 && isBlank(records[records.length - 1])) records.pop();
  const [headers, ...rows] = records;
  if (headers === undefined || isBlank(headers)) {
    throw new BadInputError(`${source} has no header row: the first line must name the columns, e.g. "brand,website"`, {
      details: { source },
    });
  }
  const brandColumn = findBrandColumn(headers, options.column, source);
  return validateBrandRows(tableToSourceRows(headers, rows, brandColumn, 2), options);
}

const PARSE_OPTIONS = { bom: true, relax_column_count: true, skip_empty_lines: false } as const;

function parseRecords(text: string, source: string): string[][] {
  try {
    return parse(text, PARSE_OPTIONS);
  } catch (error) {
    if (error instanceof CsvError) throw malformedCsv(error, text, source);
    throw error;
  }
}

function malformedCsv(error: CsvError, text: string, source: string): BadInputError {
  const line = problemLine(error, text);
  const problem =
    error.code === 'CSV_QUOTE_NOT_CLOSED'
      ? 'a quoted field is never closed'
      : error.code === 'CSV_INVALID_CLOSING_QUOTE'
        ? 'unexpected text after the closing quote of a field'
        : error.code === 'INVALID_OPENING_QUOTE'
          ? 'a quote inside an unquoted field (quote the whole field and double the inner quotes)'
          : error.message;
  const where = line === undefined ? '' : ` at line ${line}`;
  return new BadInputError(`${source} is not valid CSV${where}: ${problem}`, {
    cause: error,
    details: { source, line, csvError: error.code },
  });
}

/**
 * The line to look at. csv-parse reports where it gave up, which for an unclosed quote is
 * the end of the file; the useful line is where that record starts, found by re-reading the
 * records before it.
 */
function problemLine(error: CsvError, text: string): number | undefined {
  const line = typeof error['lines'] === 'number' ? error['lines'] : undefined;
  const goodRecords = typeof error['records'] === 'number' ? error['records'] : undefined;
  if (error.code !== 'CSV_QUOTE_NOT_CLOSED' || goodRecords === undefined) return line;
  if (goodRecords === 0) return 1;
  let lastGoodLine: number | undefined;
  parse(text, {
    ...PARSE_OPTIONS,
    to: goodRecords,
    on_record: (record, context) => {
      lastGoodLine = context.lines;
      return record;
    },
  });
  return lastGoodLine === undefined ? line : lastGoodLine + 1;
}

function isBlank(record: readonly string[] | undefined): boolean {
  return record !== undefined && record.every((cell) => cell.trim() === '');
}

async function readCsvFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : undefined;
    const message =
      code === 'ENOENT'
        ? `CSV file not found: ${path}`
        : code === 'EISDIR'
          ? `CSV path is a directory, not a file: ${path}`
          : `Cannot read CSV file ${path}${code === undefined ? '' : ` (${code})`}`;
    throw new BadInputError(message, { cause: error, details: { source: path, code } });
  }
}

/**
 * Refuses text that is not UTF-8 rather than enqueueing mojibake: Excel's plain "CSV"
 * export is Windows-1252 and its "Unicode text" export is UTF-16, and either would turn
 * every accented brand into a different, wrong brand.
 */
function decodeUtf8(bytes: Buffer, path: string): string {
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  if (!utf16) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      // fall through to the error below
    }
  }
  throw new BadInputError(
    `CSV file ${path} is not UTF-8${utf16 ? ' (it is UTF-16)' : ''}: save it as "CSV UTF-8" and try again`,
    { details: { source: path } },
  );
}
