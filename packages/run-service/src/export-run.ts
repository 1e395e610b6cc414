import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { dirname, extname, resolve } from 'node:path';
import { BadInputError } from '@brandq/errors';
import { toCsv } from '@brandq/input';
import { fieldText, resultFields, type RecipeField } from '@brandq/recipe';
import type { RunStore } from '@brandq/runs';

export const EXPORT_FORMATS = ['.csv', '.jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Excel on Windows reads a CSV as UTF-8 only when it starts with this mark. */
const UTF8_BOM = '\uFEFF';

export interface ExportOptions {
  /** Start a CSV with the UTF-8 byte order mark (default true); JSONL never has one. */
  bom?: boolean;
  /** Applied to every text value (brands, answers, reasons): what a browser gets is redacted. */
  redact?: (text: string) => string;
}

/** The export format a path names by its extension, if brandq writes it. */
export function exportFormatOf(path: string): ExportFormat | undefined {
  const ext = extname(path).toLowerCase();
  return (EXPORT_FORMATS as readonly string[]).includes(ext) ? (ext as ExportFormat) : undefined;
}

/**
 * Every brand of the run, in source order: its result's fields (the run's recipe's, in
 * its order), or why it failed. Columns: row, brand, status, the fields, reason.
 */
async function collectRows(runs: RunStore, runId: string, fields: readonly RecipeField[]): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const empty = Object.fromEntries(fields.map((f) => [f.name, null]));
  for await (const r of runs.results(runId)) {
    // CSV cells take the field's text; JSONL keeps the values' own types (numbers, lists).
    rows.push({ row: r.rowNumber, brand: r.brand, status: 'success', ...empty, ...Object.fromEntries(fields.map((f) => [f.name, r.fields[f.name] ?? null])), reason: '' });
  }
  for await (const f of runs.failures(runId)) rows.push({ row: f.rowNumber, brand: f.brand, status: 'failed', ...empty, reason: f.reason });
  return rows.sort((a, b) => Number(a.row) - Number(b.row));
}

/** Refuses a path brandq cannot write before anything is read: a format it does not write, a folder that is not there. */
export async function checkExportPath(outPath: string): Promise<void> {
  if (!exportFormatOf(outPath)) throw new BadInputError(`cannot export to ${outPath}: supported formats are ${EXPORT_FORMATS.join(', ')} (by the file's extension)`);
  const folder = dirname(resolve(outPath));
  const found = await stat(folder).catch(() => undefined);
  if (!found?.isDirectory()) throw new BadInputError(`cannot write ${outPath}: the folder ${folder} does not exist`, { details: { folder } });
}

/** Writes the run as it stands to `out`: CSV (formula-safe, BOM unless told not to) or JSONL. Returns the row count. */
export async function writeExport(runs: RunStore, runId: string, format: ExportFormat, out: Writable, options: ExportOptions = {}): Promise<number> {
  const fields = resultFields(await runs.getRecipe(runId));
  const rows = await collectRows(runs, runId, fields);
  const { redact } = options;
  if (redact) for (const row of rows) for (const [column, value] of Object.entries(row)) row[column] = redactCell(value, redact);
  if (format === '.jsonl') {
    for (const row of rows) if (!out.write(`${JSON.stringify(row)}\n`)) await once(out, 'drain');
  } else {
    const cells = rows.map((row) => ({ ...row, ...Object.fromEntries(fields.map((f) => [f.name, fieldText(f, row[f.name] as never)])) }));
    out.write(`${options.bom === false ? '' : UTF8_BOM}${toCsv(cells, ['row', 'brand', 'status', ...fields.map((f) => f.name), 'reason'])}`);
  }
  return rows.length;
}

/** Writes `.csv` or `.jsonl` by the file's extension. Returns the row count. */
export async function exportRun(runs: RunStore, runId: string, outPath: string, options: ExportOptions = {}): Promise<number> {
  await checkExportPath(outPath);
  const out = createWriteStream(outPath);
  try {
    const count = await writeExport(runs, runId, exportFormatOf(outPath) as ExportFormat, out, options);
    out.end();
    await once(out, 'finish');
    return count;
  } catch (error) {
    out.destroy();
    if (error instanceof BadInputError) throw error;
    // A write that fails after the checks (permissions, a full disk): one line, not a stack.
    throw new BadInputError(`cannot write ${outPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

function redactCell(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === 'string') return redact(value);
  return Array.isArray(value) ? value.map((item: unknown) => (typeof item === 'string' ? redact(item) : item)) : value;
}
