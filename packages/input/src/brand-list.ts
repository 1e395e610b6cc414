/** What every source (CSV, Google Sheet) turns its rows into. */

/**
 * Optional columns next to the brand name, keyed by snake_case header. `website` and
 * `country` are the ones the pipeline knows how to use; others are passed along as-is.
 */
export interface BrandHints {
  website?: string;
  country?: string;
  [hint: string]: string | undefined;
}

export interface BrandInput {
  /** `normalizeBrandKey(name)`: dedup identity and job-id fragment. */
  key: string;
  /** The name as written, trimmed, invisible formatting removed, whitespace runs collapsed. */
  name: string;
  /** 1-based row as the user sees it in the file or sheet; the header is row 1. */
  rowNumber: number;
  hints: BrandHints;
}

/** Why a row is not processed: a validation rule, or (producer) a result exists from an earlier run. */
export type SkipReason = 'empty_name' | 'duplicate' | 'too_long' | 'invalid_characters' | 'already_processed';

export interface SkippedRow {
  rowNumber: number;
  name?: string;
  reason: SkipReason;
  /** One readable sentence naming the row (and, for duplicates, the row it repeats). */
  message: string;
  /** For duplicates: the row whose brand this row repeats. */
  duplicateOf?: number;
}

export interface BrandList {
  brands: BrandInput[];
  skipped: SkippedRow[];
}

/** One row of a source, before validation. */
export interface SourceRow {
  rowNumber: number;
  /** The brand cell as read; undefined when the row is too short to have one. */
  name: string | undefined;
  hints?: Record<string, string | undefined>;
}

export interface BrandListOptions {
  /** Keep only the first N valid brands; rows after the Nth are not examined or reported. */
  limit?: number;
}
