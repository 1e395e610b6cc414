import type { BrandSource } from '@brandq/queue';

export type RunStatus = 'running' | 'paused' | 'budget_exhausted' | 'completed' | 'cancelled';

export interface BrandFacts {
  website: string | null;
  category: string | null;
  description: string | null;
  country: string | null;
  founded_year: number | null;
  sources: string[];
}

export interface BrandResult extends BrandFacts {
  key: string;
  brand: string;
  rowNumber: number;
  processedAt: string;
}

export interface BrandFailure {
  key: string;
  brand: string;
  rowNumber: number;
  kind: string;
  reason: string;
  attempts: number;
  failedAt: string;
  details?: Record<string, unknown>;
}

export interface SkippedBrand {
  rowNumber: number;
  name?: string;
  reason: string;
  message: string;
}

export interface RunMeta {
  id: string;
  source: BrandSource;
  /** Identity of the source across runs (file path or spreadsheet + range), for --resume. */
  sourceKey: string;
  status: RunStatus;
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  statusReason?: string;
}
