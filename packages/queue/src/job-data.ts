/** Where a brand came from, and where its result goes back to. */
export type BrandSource =
  | { type: 'csv'; path: string }
  | {
      type: 'sheet';
      spreadsheetId: string;
      /** Sheet title the row lives on, e.g. `Brands`. */
      sheetTitle: string;
      /** First column (letter) the result columns are written to. */
      resultColumn: string;
    };

/** The payload of one BullMQ job: one brand of one run. Never holds secrets. */
export interface BrandJobData {
  runId: string;
  /** Normalized brand key (case/whitespace/Unicode-insensitive), unique within a run. */
  key: string;
  name: string;
  /** Row number in the source as the user sees it (header is row 1). */
  rowNumber: number;
  hints: Record<string, string>;
  source: BrandSource;
  /** Bypass the result cache (`--no-cache`): every call is made and paid. */
  noCache?: boolean;
}

export const BRAND_QUEUE = 'brands';

/**
 * Deterministic job id: enqueueing the same brand of the same run twice is a no-op in
 * BullMQ. Ids avoid `:` and are never all digits (BullMQ rules).
 */
export function brandJobId(runId: string, key: string): string {
  return `${runId}.${key}`;
}
