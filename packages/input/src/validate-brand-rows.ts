import { ConfigError } from '@brandq/errors';
import { normalizeBrandKey } from './brand-key.js';
import type { BrandHints, BrandList, BrandListOptions, SkippedRow, SourceRow } from './brand-list.js';
import { codePointLabel, codePointLength, findControlCharacter, stripInvisibleFormatting } from './unicode-text.js';

/** Longer than any real brand name; anything past it is a pasted paragraph, not a brand. */
export const MAX_BRAND_NAME_LENGTH = 200;

/**
 * Applies the rules every source shares, in row order: empty names, control characters,
 * over-long names and repeats of an earlier brand are reported in `skipped` (one entry per
 * row, so `brands + skipped` accounts for every row read); the rest become brands.
 */
export function validateBrandRows(rows: Iterable<SourceRow>, options: BrandListOptions = {}): BrandList {
  const limit = checkedLimit(options.limit);
  const result: BrandList = { brands: [], skipped: [] };
  const firstRowByKey = new Map<string, number>();
  if (limit === 0) return result;

  for (const row of rows) {
    const skip = (entry: Omit<SkippedRow, 'rowNumber'>): void => {
      result.skipped.push({ rowNumber: row.rowNumber, ...entry });
    };
    const raw = row.name ?? '';
    // Tabs and line breaks count as whitespace (a multi-line sheet cell is still one name);
    // any other control character means the cell is garbage, not a name.
    const control = findControlCharacter(raw.replace(/[\t\n\r]/g, ' '));
    const name = stripInvisibleFormatting(raw).trim().replace(/\s+/g, ' ');

    if (name === '') {
      skip({ reason: 'empty_name', message: `Row ${row.rowNumber}: brand name is empty` });
      continue;
    }
    if (control !== undefined) {
      skip({
        name,
        reason: 'invalid_characters',
        message: `Row ${row.rowNumber}: brand name contains the control character ${codePointLabel(control)}`,
      });
      continue;
    }
    const length = codePointLength(name);
    if (length > MAX_BRAND_NAME_LENGTH) {
      skip({
        name,
        reason: 'too_long',
        message: `Row ${row.rowNumber}: brand name is ${length} characters long; the limit is ${MAX_BRAND_NAME_LENGTH}`,
      });
      continue;
    }
    const key = normalizeBrandKey(name);
    const firstRow = firstRowByKey.get(key);
    if (firstRow !== undefined) {
      skip({
        name,
        reason: 'duplicate',
        duplicateOf: firstRow,
        message: `Row ${row.rowNumber}: "${name}" duplicates row ${firstRow}`,
      });
      continue;
    }
    firstRowByKey.set(key, row.rowNumber);
    result.brands.push({ key, name, rowNumber: row.rowNumber, hints: cleanHints(row.hints) });
    if (result.brands.length === limit) break;
  }
  return result;
}

function checkedLimit(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new ConfigError(`limit must be a whole number of brands (0 or more), got ${limit}`);
  }
  return limit;
}

/** Hints are free text for the LLM: trimmed, control characters dropped, empty ones omitted. */
function cleanHints(hints: Record<string, string | undefined> | undefined): BrandHints {
  const cleaned: BrandHints = {};
  for (const [hint, value] of Object.entries(hints ?? {})) {
    const text = stripInvisibleFormatting(value ?? '')
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g, '')
      .trim();
    if (text !== '') cleaned[hint] = text;
  }
  return cleaned;
}
