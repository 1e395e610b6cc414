import { resolve } from 'node:path';
import type { Config } from '@brandq/config';
import { brandsFromSheetValues, columnIndex, columnLetter, parseA1Range, readCsvBrands, type BrandInput, type SkippedRow } from '@brandq/input';
import type { BrandSource } from '@brandq/queue';
import { SheetsClient } from '@brandq/sheets';

export interface SourceSpec {
  csv?: string | undefined;
  sheet?: string | undefined;
  range: string;
  column?: string | undefined;
  resultColumn?: string | undefined;
  limit?: number | undefined;
}

export interface LoadedSource {
  source: BrandSource;
  /** Identity of the source across runs, so `--resume` finds the previous run. */
  sourceKey: string;
  brands: BrandInput[];
  skipped: SkippedRow[];
  /** A sheet's header row (the row above the range), where the result columns' names go; absent for a CSV. */
  headerRow?: number;
  /** Set by skipAlreadyProcessed: the runs holding results of the brands it skipped, newest first. */
  alreadyProcessedIn?: string[];
}

export function sheetsClientFor(config: Config): SheetsClient {
  return new SheetsClient({
    rootUrl: config.GOOGLE_SHEETS_ROOT_URL,
    accessToken: config.GOOGLE_SHEETS_ACCESS_TOKEN,
    keyFile: config.GOOGLE_APPLICATION_CREDENTIALS,
  });
}

/** Identity of a source across runs: the absolute CSV path, or the spreadsheet and range. */
export function sourceKeyFor(spec: Pick<SourceSpec, 'csv' | 'sheet' | 'range'>): string {
  return spec.csv ? `csv:${resolve(spec.csv)}` : `sheet:${spec.sheet ?? ''}:${spec.range}`;
}

export async function loadSource(spec: SourceSpec, config: Config): Promise<LoadedSource> {
  const limit = spec.limit === undefined ? {} : { limit: spec.limit };
  const sourceKey = sourceKeyFor(spec);
  if (spec.csv) {
    const path = resolve(spec.csv);
    const { brands, skipped } = await readCsvBrands(path, { ...limit, ...(spec.column ? { column: spec.column } : {}) });
    return { source: { type: 'csv', path }, sourceKey, brands, skipped };
  }
  if (!spec.sheet) throw new Error('no source given');
  const range = parseA1Range(spec.range);
  const sheetTitle = range.sheet ?? 'Sheet1';
  const values = await sheetsClientFor(config).readValues(spec.sheet, spec.range);
  const { brands, skipped } = brandsFromSheetValues(values, { range: spec.range, ...limit });
  const resultColumn = spec.resultColumn ?? columnLetter(columnIndex(range.endColumn ?? range.startColumn) + 1);
  return {
    source: { type: 'sheet', spreadsheetId: spec.sheet, sheetTitle, resultColumn },
    sourceKey,
    brands,
    skipped,
    headerRow: range.startRow - 1,
  };
}
