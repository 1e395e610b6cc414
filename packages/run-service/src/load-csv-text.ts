import { createHash } from 'node:crypto';
import { parseCsvBrands } from '@brandq/input';
import type { LoadedSource } from './load-source.js';

export interface CsvTextSpec {
  /** The CSV content itself, header row first: never a path on this machine. */
  csvText: string;
  column?: string | undefined;
  limit?: number | undefined;
}

/**
 * A source from CSV content sent over HTTP (the board's `POST /api/runs`). Its identity is
 * the content's hash, so sending the same list again finds the brands already processed.
 */
export function loadCsvText(spec: CsvTextSpec): LoadedSource {
  const digest = createHash('sha256').update(spec.csvText).digest('hex');
  const { brands, skipped } = parseCsvBrands(spec.csvText, {
    source: 'the CSV text',
    ...(spec.column ? { column: spec.column } : {}),
    ...(spec.limit === undefined ? {} : { limit: spec.limit }),
  });
  return { source: { type: 'csv', path: `upload:sha256:${digest.slice(0, 16)}` }, sourceKey: `csv-text:sha256:${digest}`, brands, skipped };
}
