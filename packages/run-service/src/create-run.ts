import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { BadInputError, ConfigError } from '@brandq/errors';
import { FairScheduler, type RunShare } from '@brandq/fair-share';
import { CostLedger, type LlmTier } from '@brandq/ledger';
import { headerCells, resultRange } from '@brandq/pipeline';
import type { RunEstimate } from '@brandq/preflight';
import type { BrandQueue } from '@brandq/queue';
import { resultFields, type Recipe } from '@brandq/recipe';
import { RunStore, newRunId, type SkippedBrand } from '@brandq/runs';
import { SheetWriteQueue } from '@brandq/sheets';
import { enqueueRun } from './enqueue-run.js';
import { loadCsvText, type CsvTextSpec } from './load-csv-text.js';
import { loadSource, type LoadedSource, type SourceSpec } from './load-source.js';
import { nothingToDo, type NothingToDo } from './nothing-to-do.js';
import { preflightRun } from './preflight-run.js';
import { skipAlreadyProcessed } from './skip-processed.js';

export interface RunServiceDeps {
  redis: Redis;
  queue: BrandQueue;
  config: Config;
}

/** A new run (or more brands for an existing one), as the CLI and the HTTP API ask for it. */
export interface CreateRunRequest {
  /** A CSV file or a sheet (the CLI), or CSV content (the HTTP API, which reads no file). */
  source: SourceSpec | CsvTextSpec;
  /** The run to create or extend; a new id when absent. */
  runId?: string | undefined;
  /** In micro-dollars; 0 = no budget. */
  budgetMicros: number;
  recipe: Recipe;
  noCache: boolean;
  /** Redo brands that already have a result from this recipe, and replace the recipe of an existing run. */
  force: boolean;
  /** Enqueue even when the estimate is above the budget (the budget still holds). */
  allowPartial: boolean;
  /** Estimate only: nothing is written. */
  dryRun?: boolean;
  /** Refuse while a provider is in a fleet-wide cooldown (the HTTP API does: its caller can retry). */
  refuseDuringCooldown: boolean;
  /** The run's weight and ceiling among the fleet's runs (`--weight`, `--max-rpm`). */
  share?: Partial<RunShare> | undefined;
  /** The run's LLM tier (`--llm-tier`, default standard) and, for flex, how long a refused call waits before it goes standard (`--flex-fallback-after`, default FLEX_FALLBACK_AFTER_SECONDS). */
  llmTier?: LlmTier | undefined;
  flexFallbackAfterMs?: number | undefined;
}

export type CreateRunOutcome =
  | { kind: 'created'; runId: string; enqueued: number; added: number; total: number; skipped: SkippedBrand[]; estimate: RunEstimate }
  | { kind: 'estimated'; estimate: RunEstimate; skipped: SkippedBrand[] }
  | (NothingToDo & { skipped: SkippedBrand[] });

/**
 * Creating a run, the one way the CLI and the board both do it: load the source, refuse a
 * source without a brand, leave out brands this recipe already answered for the source
 * (unless forced), say "nothing to do" rather than create an empty run, estimate behind
 * the preflight guard (cooldown, budget), then write the run with its recipe, enqueue its
 * brands, and give a sheet its result columns' header row.
 */
export async function createRun(deps: RunServiceDeps, request: CreateRunRequest): Promise<CreateRunOutcome> {
  const { redis, queue, config } = deps;
  const runs = new RunStore(redis, { retentionDays: config.RUN_RETENTION_DAYS });
  const loaded = await load(request.source, config);
  refuseEmptySource(loaded, describeSource(request.source));
  if (!request.force) await skipAlreadyProcessed(runs, loaded, request.recipe);
  const idle = nothingToDo(loaded);
  if (idle) return { ...idle, skipped: loaded.skipped };
  const estimate = await preflightRun(
    { redis, config, queue },
    {
      loaded,
      recipe: request.recipe,
      budgetMicros: request.budgetMicros,
      noCache: request.noCache,
      allowPartial: request.dryRun === true || request.allowPartial,
      refuseDuringCooldown: request.refuseDuringCooldown,
      llmTier: request.llmTier,
    },
  );
  if (request.dryRun) return { kind: 'estimated', estimate, skipped: loaded.skipped };
  const runId = request.runId ?? newRunId();
  const outcome = await enqueueRun(
    { runs, ledger: new CostLedger(redis), queue, scheduler: new FairScheduler(redis, queue) },
    {
      runId,
      loaded,
      recipe: request.recipe,
      replaceRecipe: request.force,
      budgetMicros: request.budgetMicros,
      attempts: config.JOB_ATTEMPTS,
      retention: { keepCompleted: config.JOB_KEEP_COMPLETED, keepFailed: config.JOB_KEEP_FAILED },
      noCache: request.noCache,
      share: request.share,
      llm: request.llmTier === undefined ? undefined : { tier: request.llmTier, flexFallbackAfterMs: request.flexFallbackAfterMs ?? config.FLEX_FALLBACK_AFTER_SECONDS * 1000 },
    },
  );
  if (outcome.kind === 'nothing_to_do') return { ...outcome, skipped: loaded.skipped };
  if (outcome.created) await writeHeaderRow(new SheetWriteQueue(redis), runId, loaded, request.recipe);
  return { kind: 'created', runId, enqueued: outcome.enqueued, added: outcome.added, total: outcome.run.total, skipped: loaded.skipped, estimate };
}

function isCsvText(source: SourceSpec | CsvTextSpec): source is CsvTextSpec {
  return 'csvText' in source;
}

async function load(source: SourceSpec | CsvTextSpec, config: Config): Promise<LoadedSource> {
  if (isCsvText(source)) return loadCsvText(source);
  if (source.sheet) checkSheetCredentials(config);
  return loadSource(source, config);
}

function describeSource(source: SourceSpec | CsvTextSpec): string {
  if (isCsvText(source)) return 'the CSV text';
  return source.csv ? source.csv : `sheet ${source.sheet ?? ''} range ${source.range}`;
}

/** A sheet is read with one of two documented credentials; without either, say which. */
function checkSheetCredentials(config: Config): void {
  if (config.GOOGLE_SHEETS_ACCESS_TOKEN || config.GOOGLE_APPLICATION_CREDENTIALS) return;
  throw new ConfigError(
    'reading a Google Sheet needs credentials: set GOOGLE_APPLICATION_CREDENTIALS (a service account key file, with the sheet shared with its e-mail) ' +
      'or GOOGLE_SHEETS_ACCESS_TOKEN (an OAuth access token)',
    { details: { variables: ['GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_SHEETS_ACCESS_TOKEN'] } },
  );
}

/** A source without one valid brand is a mistake to report, not an empty run to complete. */
function refuseEmptySource(loaded: LoadedSource, where: string): void {
  if (loaded.brands.length > 0) return;
  const invalid = loaded.skipped.length;
  throw new BadInputError(`no brands in ${where}${invalid > 0 ? ` (${invalid} ${invalid === 1 ? 'row' : 'rows'} skipped as invalid)` : ''}`, {
    details: { source: loaded.sourceKey, skipped: invalid },
  });
}

/**
 * The result columns' header, written once when a run on a sheet is created, through the
 * fleet's sheet flusher like every row: the row above the range (a range starting on row 1
 * has no row for it, and gets none).
 */
async function writeHeaderRow(writes: SheetWriteQueue, runId: string, loaded: LoadedSource, recipe: Recipe): Promise<void> {
  const { source } = loaded;
  if (source.type !== 'sheet') return;
  const headerRow = loaded.headerRow ?? 0;
  if (headerRow < 1) return;
  const fields = resultFields(recipe);
  await writes.enqueue(runId, source.spreadsheetId, { range: resultRange(source.sheetTitle, source.resultColumn, headerRow, fields.length), values: [headerCells(fields)] });
}
