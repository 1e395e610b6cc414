import type { BrandSource } from '@brandq/queue';
import type { FieldValue } from '@brandq/recipe';

export type RunStatus = 'running' | 'paused' | 'budget_exhausted' | 'completed' | 'cancelled';

export interface BrandResult {
  key: string;
  brand: string;
  rowNumber: number;
  /** The run's recipe's fields, by name (null where the answer had no value). */
  fields: Record<string, FieldValue>;
  /** The fingerprint of the recipe that answered (absent: written before recipes, the default one). */
  recipe?: string;
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
  /** The recipe the run's brands follow (runs created before recipes follow the default one). */
  recipeName?: string;
  recipeFingerprint?: string;
  /** The run's weight in the fleet's fair shares (absent: 1). */
  weight?: number;
  /** The run's own ceiling in calls per minute at each provider (absent: only the provider's limit). */
  maxRpm?: number;
  /** The run's LLM tier (`--llm-tier`; absent: standard). A recipe step's own tier wins. */
  llmTier?: 'flex' | 'batch';
  /** A flex call refused for capacity this long goes at the standard tier (`--flex-fallback-after`; absent: never). */
  flexFallbackAfterMs?: number;
}

/** What an operator did to a run (the board's run controls). */
export type RunAction = 'pause' | 'resume' | 'cancel' | 'budget' | 'retry' | 'share';

/** One entry of a run's history: when, what, who (the basic-auth user, else 'anonymous'), and what came of it. */
export interface RunHistoryEntry {
  /** ISO time. */
  at: string;
  action: RunAction;
  by: string;
  details: Record<string, unknown>;
}
