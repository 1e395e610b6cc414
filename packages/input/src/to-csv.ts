import { neutralizeCell } from './neutralize-cell.js';

/**
 * RFC 4180 CSV (CRLF line ends, fields with `,` `"` CR or LF quoted, quotes doubled), with
 * a header row of `columns` and one record per row. Every string goes through
 * `neutralizeCell`, so the export is safe to open in a spreadsheet app.
 */
export function toCsv(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const lines = [columns.map((column) => csvField(neutralizeCell(column)))];
  for (const row of rows) lines.push(columns.map((column) => csvField(cellText(row[column]))));
  return lines.map((fields) => `${fields.join(',')}\r\n`).join('');
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return neutralizeCell(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  // Lists and objects (e.g. sources, evidence) are exported as JSON text, still neutralized.
  return neutralizeCell(JSON.stringify(value) ?? '');
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
