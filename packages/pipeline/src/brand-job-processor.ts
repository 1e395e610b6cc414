import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { BrandqError} from '@brandq/errors';
import { TransientError, isBrandqError } from '@brandq/errors';
import type { Logger } from '@brandq/logger';
import type { BrandJobData } from '@brandq/queue';
import { recipeFingerprint, type Recipe } from '@brandq/recipe';
import type { RunMeta, RunStatus, RunStore } from '@brandq/runs';
import type { BrandCheckpoint, BrandPipeline } from './brand-pipeline.js';
import { doublingBackoffMs, exponentialBackoffMs } from './backoff.js';

/** What a job carries between attempts besides the brand: paid-for work and its history. */
export interface BrandJobState {
  checkpoint?: BrandCheckpoint;
  rateLimitHits?: number;
  /** When this brand's flex calls were first refused for capacity (ms), and how often since. */
  flexRefusedSince?: number;
  flexRefusals?: number;
  /** The brand's flex calls waited out the run's `--flex-fallback-after`: they go at the standard tier. */
  flexFallback?: boolean;
  history?: AttemptRecord[];
}

export interface AttemptRecord {
  at: string;
  kind: string;
  message: string;
  provider?: string | undefined;
  waitMs?: number;
}

export type StoredJobData = BrandJobData & BrandJobState;

export interface ProcessorOptions {
  pipeline: BrandPipeline;
  runs: RunStore;
  logger: Logger;
  /** Rate-limit waits a job may take before it fails with RATE_LIMIT_EXHAUSTED. */
  rateLimitMaxAttempts: number;
  rateLimitBackoffBaseMs: number;
  /** How long a job of a paused run waits before looking again. */
  pausedRecheckMs: number;
  /** How long a job waits for the run's in-flight calls to settle when only they stand in the budget's way (default 2000). */
  budgetInFlightRecheckMs?: number;
  /** How long a job whose batch-tier step parked waits before it looks again, if the batch coordinator has not woken it (default 5 min). */
  batchParkRecheckMs?: number;
  /** The first wait of a flex call refused for capacity; doubled each time, up to 32x (default 5000). */
  flexBackoffBaseMs?: number;
  /** A flex call refused for capacity this long goes standard, for runs that set no `--flex-fallback-after` (FLEX_FALLBACK_AFTER_SECONDS; 0 = never). */
  flexFallbackAfterMs?: number;
}

/** A final failure that BullMQ must not retry, carrying its class for metrics and Bull Board. */
export class FinalFailure extends UnrecoverableError {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(`${kind}: ${message}`);
    this.name = 'UnrecoverableError';
  }
}

const HELD_STATUSES: ReadonlySet<RunStatus> = new Set(['paused', 'budget_exhausted']);

/**
 * The BullMQ processor for one brand job. Provider waits go through BullMQ (the job moves
 * to delayed), never a sleep that holds a worker slot; every outcome leaves a readable
 * reason in the run and in the job's logs.
 */
export function createBrandJobProcessor(options: ProcessorOptions) {
  const { pipeline, runs, logger } = options;
  /** Recipes by fingerprint: a run's recipe is read from Redis once per process, not per brand. */
  const recipes = new Map<string, Recipe>();

  async function recipeOf(run: RunMeta): Promise<Recipe> {
    const known = run.recipeFingerprint === undefined ? undefined : recipes.get(run.recipeFingerprint);
    if (known) return known;
    const recipe = await runs.getRecipe(run.id);
    // Kept under the fingerprint of what was read: a recipe switched (--force) between the
    // two reads must not be remembered under the old fingerprint, which other runs share.
    const fingerprint = recipeFingerprint(recipe);
    if (fingerprint === run.recipeFingerprint) recipes.set(fingerprint, recipe);
    return recipe;
  }

  return async function processBrandJob(job: Job<StoredJobData>, token?: string): Promise<{ key: string; fresh: boolean }> {
    const data = job.data;
    const run = await runs.getRun(data.runId);
    if (!run) throw new FinalFailure('bad_input', `run ${data.runId} does not exist (deleted?)`);
    if (run.status === 'cancelled') return { key: data.key, fresh: false };
    if (HELD_STATUSES.has(run.status)) {
      await holdJob(job, token, options.pausedRecheckMs);
    }

    try {
      const outcome = await pipeline.process(data, await recipeOf(run), {
        checkpoint: data.checkpoint ?? {},
        maxRpm: run.maxRpm,
        llmTier: run.llmTier,
        flexFallback: data.flexFallback === true,
        saveCheckpoint: async (checkpoint) => {
          data.checkpoint = checkpoint;
          // A step is done: the next one's flex refusals are counted from its own first.
          delete data.flexRefusedSince;
          delete data.flexRefusals;
          await job.updateData(data);
        },
      });
      return { key: data.key, fresh: outcome.fresh };
    } catch (caught) {
      const error: BrandqError = isBrandqError(caught)
        ? caught
        : new TransientError(caught instanceof Error ? caught.message : String(caught), { cause: caught });
      return handleFailure(job, token, error, run);
    }
  };

  async function handleFailure(job: Job<StoredJobData>, token: string | undefined, error: BrandqError, run: RunMeta): Promise<never> {
    const data = job.data;
    const record: AttemptRecord = { at: new Date().toISOString(), kind: error.kind, message: error.message, provider: error.provider };

    switch (error.kind) {
      case 'rate_limited': {
        const hits = (data.rateLimitHits ?? 0) + 1;
        // The provider's hint, but never below the floor the original tool kept (base doubling,
        // capped at 16x base: 2 s -> 32 s by default):
        // "try again in 20ms" taken verbatim burns every attempt within a second.
        const waitMs = Math.max(error.retryAfterMs ?? 0, doublingBackoffMs(hits, options.rateLimitBackoffBaseMs, options.rateLimitBackoffBaseMs * 16));
        if (hits >= options.rateLimitMaxAttempts) {
          const reason = `RATE_LIMIT_EXHAUSTED: ${error.provider ?? 'provider'} still rate limited after ${hits} attempts (last wait ${waitMs} ms)`;
          await fail(job, error, reason, { code: 'RATE_LIMIT_EXHAUSTED', provider: error.provider, attempts: hits, lastWaitMs: waitMs });
          throw new FinalFailure('rate_limit_exhausted', reason);
        }
        data.rateLimitHits = hits;
        await remember(job, { ...record, waitMs });
        await delay(job, token, waitMs);
        throw new DelayedError();
      }
      case 'budget_in_flight': {
        // Only calls still in flight stand between this brand and the budget: they settle
        // (or expire) within a call's time, then the budget says yes or no for good.
        await delay(job, token, exponentialBackoffMs(1, options.budgetInFlightRecheckMs ?? 2000));
        throw new DelayedError();
      }
      case 'budget_exhausted': {
        // Versioned: a refusal computed under a budget that a resume has since replaced
        // must not stop the run again.
        const epoch = Number(error.details['budgetEpoch'] ?? 0);
        await runs.markBudgetExhausted(data.runId, epoch, error.message);
        await remember(job, record);
        await holdJob(job, token, options.pausedRecheckMs);
        throw new DelayedError();
      }
      case 'quota_exhausted': {
        // Credits are gone for the whole fleet: pause the run once, keep every brand queued.
        const reason = `${error.message} (pnpm enqueue --resume --run ${data.runId})`;
        if (await pauseRunOnce(data.runId, reason)) logger.error({ runId: data.runId, provider: error.provider }, `run ${data.runId} paused: ${reason}`);
        await remember(job, record);
        return holdJob(job, token, options.pausedRecheckMs);
      }
      case 'unauthorized': {
        // A refused key fails every brand the same way: the first brand fails with the reason
        // and the run pauses, so the rest stay queued instead of failing one by one.
        const reason = unauthorizedReason(error, data.runId);
        if (!(await pauseRunOnce(data.runId, reason))) {
          // Another brand already stopped the run (this call was in flight): wait with the rest.
          await remember(job, record);
          return holdJob(job, token, options.pausedRecheckMs);
        }
        logger.error({ runId: data.runId, provider: error.provider, brand: data.name }, `run ${data.runId} paused: ${reason}`);
        await fail(job, error, reason);
        throw new FinalFailure(error.kind, reason);
      }
      case 'batch_parked': {
        // Waits for its batch with its worker slot given back; the coordinator wakes it when
        // the answer is in, and the recheck covers a wake lost to a crash. No attempt used.
        await delay(job, token, options.batchParkRecheckMs ?? 300_000);
        throw new DelayedError();
      }
      case 'capacity_unavailable': {
        // Flex capacity is short: not a rate limit and not billed. Back off; once the run's
        // --flex-fallback-after has passed since the first refusal, go at the standard tier.
        const now = Date.now();
        data.flexRefusedSince ??= now;
        data.flexRefusals = (data.flexRefusals ?? 0) + 1;
        const fallbackAfterMs = run.flexFallbackAfterMs ?? options.flexFallbackAfterMs ?? 0;
        if (fallbackAfterMs > 0 && now - data.flexRefusedSince >= fallbackAfterMs) {
          data.flexFallback = true;
          await remember(job, { ...record, message: `${record.message}; refused for ${now - data.flexRefusedSince} ms: going at the standard tier` });
          await delay(job, token, 1);
          throw new DelayedError();
        }
        const base = options.flexBackoffBaseMs ?? 5000;
        const waitMs = Math.max(error.retryAfterMs ?? 0, doublingBackoffMs(data.flexRefusals, base, base * 32));
        await remember(job, { ...record, waitMs });
        await delay(job, token, waitMs);
        throw new DelayedError();
      }
      case 'run_throttled': {
        // The run's own ceiling: the job waits for its run's next slot with its worker slot
        // given back. Not a failure: no attempt is used and nothing is written to its history.
        await delay(job, token, error.retryAfterMs ?? 1000);
        throw new DelayedError();
      }
      case 'transient':
      case 'limiter_unavailable': {
        await remember(job, record);
        const attempts = job.opts.attempts ?? 1;
        if (job.attemptsMade + 1 >= attempts) await fail(job, error, `${error.message} (after ${attempts} attempts)`);
        throw error;
      }
      default: {
        await fail(job, error, error.message);
        throw new FinalFailure(error.kind, error.message);
      }
    }
  }

  /**
   * Pauses a running run with `reason`; false when the run was already held (paused, out of
   * budget) or finished, so only the first brand to see the failure reports it.
   */
  async function pauseRunOnce(runId: string, reason: string): Promise<boolean> {
    // In one step: a run cancelled (or paused) meanwhile is never turned into a paused one.
    return runs.transitionStatus(runId, ['running'], 'paused', reason);
  }

  async function remember(job: Job<StoredJobData>, record: AttemptRecord): Promise<void> {
    const data = job.data;
    data.history = [...(data.history ?? []), record].slice(-20);
    await job.updateData(data);
    await job.log(`${record.at} ${record.kind}${record.provider ? ` (${record.provider})` : ''}: ${record.message}${record.waitMs !== undefined ? `; waiting ${record.waitMs} ms` : ''}`);
  }

  async function fail(job: Job<StoredJobData>, error: BrandqError, reason: string, extra: Record<string, unknown> = {}): Promise<void> {
    const data = job.data;
    await remember(job, { at: new Date().toISOString(), kind: error.kind, message: reason, provider: error.provider });
    await runs.recordFailure({
      runId: data.runId,
      key: data.key,
      brand: data.name,
      rowNumber: data.rowNumber,
      kind: error.kind,
      reason,
      attempts: job.attemptsMade + 1,
      failedAt: new Date().toISOString(),
      details: { ...error.toJSON(), ...extra, history: data.history ?? [] },
    });
  }
}

async function delay(job: Job, token: string | undefined, waitMs: number): Promise<void> {
  await job.moveToDelayed(Date.now() + Math.max(1, Math.round(waitMs)), token);
}

/** Parks a job of a held run; it stays queued (delayed), never failed. */
async function holdJob(job: Job, token: string | undefined, recheckMs: number): Promise<never> {
  await delay(job, token, recheckMs);
  throw new DelayedError();
}

/** Where each provider's credential comes from, so the message says what to fix. */
const CREDENTIAL: Record<string, string> = {
  llm: 'OPENAI_API_KEY',
  tavily: 'TAVILY_API_KEY',
  sheets: 'GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SHEETS_ACCESS_TOKEN',
};

function unauthorizedReason(error: BrandqError, runId: string): string {
  const credential = CREDENTIAL[error.provider ?? ''] ?? 'the API key';
  return `${error.message} -- check ${credential} on the workers, restart them, then: pnpm enqueue --retry-failed --run ${runId}`;
}

/**
 * BullMQ backoff for ordinary retries (transient failures): exponential with jitter, or the
 * provider's explicit Retry-After when it is longer. Rate limits never come here (the
 * processor delays those jobs itself), and classification keeps rate-window resets out of
 * a transient error's wait.
 */
export function brandBackoffStrategy(baseMs: number) {
  return (attemptsMade: number, _type: string | undefined, err: Error | undefined): number => {
    const asked = isBrandqError(err) ? err.retryAfterMs : undefined;
    return Math.max(asked ?? 0, exponentialBackoffMs(attemptsMade, baseMs));
  };
}
