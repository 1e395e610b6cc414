import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, extname, resolve } from 'node:path';
import { BadInputError } from '@brandq/errors';
import { toCsv } from '@brandq/input';
import type { RunStore } from '@brandq/runs';
import { UsageError } from './usage-error.js';

const EXPORT_COLUMNS = ['row', 'brand', 'status', 'website', 'category', 'description', 'country', 'founded_year', 'sources', 'reason'] as const;

const EXPORT_FORMATS = ['.csv', '.jsonl'] as const;

/** Excel on Windows reads a CSV as UTF-8 only when it starts with this mark. */
const UTF8_BOM = '\uFEFF';

type ExportRow = Record<(typeof EXPORT_COLUMNS)[number], unknown>;

export interface ExportOptions {
  /** Start a CSV with the UTF-8 byte order mark (default true); JSONL never has one. */
  bom?: boolean;
}

/** Every brand of the run, in source order: its result, or why it failed. */
async function collectRows(runs: RunStore, runId: string): Promise<ExportRow[]> {
  const rows: ExportRow[] = [];
  for await (const r of runs.results(runId)) {
    rows.push({ row: r.rowNumber, brand: r.brand, status: 'success', website: r.website, category: r.category, description: r.description, country: r.country, founded_year: r.founded_year, sources: r.sources.join(' '), reason: '' });
  }
  for await (const f of runs.failures(runId)) {
    rows.push({ row: f.rowNumber, brand: f.brand, status: 'failed', website: null, category: null, description: null, country: null, founded_year: null, sources: '', reason: f.reason });
  }
  return rows.sort((a, b) => Number(a.row) - Number(b.row));
}

/** Refuses a path brandq cannot write before anything is read: a format it does not write, a folder that is not there. */
export async function checkExportPath(outPath: string): Promise<void> {
  const ext = extname(outPath).toLowerCase();
  if (!(EXPORT_FORMATS as readonly string[]).includes(ext)) {
    throw new UsageError(`cannot export to ${outPath}: supported formats are ${EXPORT_FORMATS.join(', ')} (by the file's extension)`);
  }
  const folder = dirname(resolve(outPath));
  const found = await stat(folder).catch(() => undefined);
  if (!found?.isDirectory()) throw new BadInputError(`cannot write ${outPath}: the folder ${folder} does not exist`, { details: { folder } });
}

/** Writes `.csv` (formula-safe, with a UTF-8 BOM unless told not to) or `.jsonl` by the file's extension. Returns the row count. */
export async function exportRun(runs: RunStore, runId: string, outPath: string, options: ExportOptions = {}): Promise<number> {
  await checkExportPath(outPath);
  const rows = await collectRows(runs, runId);
  const out = createWriteStream(outPath);
  try {
    if (extname(outPath).toLowerCase() === '.jsonl') {
      for (const row of rows) if (!out.write(`${JSON.stringify(row)}\n`)) await once(out, 'drain');
    } else {
      out.write(`${options.bom === false ? '' : UTF8_BOM}${toCsv(rows, [...EXPORT_COLUMNS])}`);
    }
    out.end();
    await once(out, 'finish');
  } catch (error) {
    // A write that fails after the checks (permissions, a full disk): one line, not a stack.
    throw new BadInputError(`cannot write ${outPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  return rows.length;
}
