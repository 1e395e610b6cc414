import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { toCsv } from '@brandq/input';
import type { RunStore } from '@brandq/runs';

export const EXPORT_COLUMNS = ['row', 'brand', 'status', 'website', 'category', 'description', 'country', 'founded_year', 'sources', 'reason'] as const;

type ExportRow = Record<(typeof EXPORT_COLUMNS)[number], unknown>;

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

/** Writes `.csv` (formula-safe) or `.jsonl` by the file's extension. Returns the row count. */
export async function exportRun(runs: RunStore, runId: string, outPath: string): Promise<number> {
  const rows = await collectRows(runs, runId);
  const out = createWriteStream(outPath);
  if (outPath.endsWith('.jsonl')) {
    for (const row of rows) if (!out.write(`${JSON.stringify(row)}\n`)) await once(out, 'drain');
  } else {
    out.write(toCsv(rows, [...EXPORT_COLUMNS]));
  }
  out.end();
  await once(out, 'finish');
  return rows.length;
}
