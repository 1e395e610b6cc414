import { BadInputError, TransientError, isBrandqError } from '@brandq/errors';
import type { BrandInput } from '@brandq/input';
import { DEFAULT_WEIGHT, type FairScheduler, type RunShare } from '@brandq/fair-share';
import type { CostLedger, LlmTier } from '@brandq/ledger';
import type { Recipe } from '@brandq/recipe';
import { brandJobId, brandJobOptions, type BrandJobData, type BrandQueue, type RetentionOptions } from '@brandq/queue';
import type { RunMeta, RunStore } from '@brandq/runs';
import type { LoadedSource } from './load-source.js';
import { nothingToDo, type NothingToDo } from './nothing-to-do.js';

export interface EnqueueRunInput {
  runId: string;
  loaded: LoadedSource;
  recipe: Recipe;
  /** Replace the recipe of an existing run that follows another (`--force`). */
  replaceRecipe?: boolean;
  budgetMicros: number;
  attempts: number;
  retention: RetentionOptions;
  noCache?: boolean;
  /** The run's weight and ceiling (`--weight`, `--max-rpm`); a field left out keeps the run's own (a new run's weight is 1). */
  share?: Partial<RunShare> | undefined;
  /** The run's LLM tier and flex fallback (`--llm-tier`, `--flex-fallback-after`); absent: the run keeps its own. */
  llm?: { tier: LlmTier; flexFallbackAfterMs: number } | undefined;
}

export interface EnqueueRunDeps {
  runs: RunStore;
  ledger: CostLedger;
  queue: BrandQueue;
  scheduler: FairScheduler;
}

const BULK_CHUNK = 500;

/** The hints a brand carries into its job: the non-empty hint columns of its row. */
export function hintsOf(brand: BrandInput): Record<string, string> {
  return Object.fromEntries(Object.entries(brand.hints).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
}

export function jobDataFor(runId: string, loaded: LoadedSource, brand: BrandInput, noCache = false): BrandJobData {
  return { runId, key: brand.key, name: brand.name, rowNumber: brand.rowNumber, hints: hintsOf(brand), source: loaded.source, ...(noCache ? { noCache } : {}) };
}

/** The run as written and the jobs enqueued for it. */
export interface Enqueued {
  kind: 'enqueued';
  run: RunMeta;
  /** Jobs offered to the queue: one per brand of the list (ids the queue holds are ignored). */
  enqueued: number;
  /** Brands the run did not hold before (all of them for a new run). */
  added: number;
  /** This call created the run. */
  created: boolean;
}

/**
 * Creates the run, or extends an existing one with the brands of the list it does not hold
 * yet (all in one atomic step, its total derived from its brands), and then enqueues one
 * job per brand with a deterministic id. A list with no brand left creates no run: the
 * answer says why instead. If the process or Redis dies in between, enqueueing the same
 * run again (`--resume --run <id>`) adds exactly the missing jobs: BullMQ ignores ids it
 * already holds. A Redis failure on the way is reported as a `TransientError` that says
 * which of the two states the run was left in and what to run next.
 */
export async function enqueueRun(deps: EnqueueRunDeps, input: EnqueueRunInput): Promise<Enqueued | NothingToDo> {
  const idle = nothingToDo(input.loaded);
  if (idle) return idle;
  const jobs = input.loaded.brands.map((b) => jobDataFor(input.runId, input.loaded, b, input.noCache));
  let run: RunMeta;
  let added: number;
  let created: boolean;
  try {
    const written = await deps.runs.createOrExtendRun({
      id: input.runId,
      source: input.loaded.source,
      sourceKey: input.loaded.sourceKey,
      brands: jobs,
      skipped: input.loaded.skipped,
      recipe: input.recipe,
      replaceRecipe: input.replaceRecipe === true,
    });
    if (written.kind === 'other_source') {
      throw new BadInputError(`run ${input.runId} belongs to ${written.runSourceKey}, not to ${input.loaded.sourceKey}: give another --run for this source`, {
        details: { runId: input.runId, sourceKey: input.loaded.sourceKey, runSourceKey: written.runSourceKey },
      });
    }
    if (written.kind === 'other_recipe') {
      throw new BadInputError(
        `run ${input.runId} follows recipe "${written.runRecipeName}", not this one ("${input.recipe.name}"): give the run's recipe, another --run, or --force to switch the run to this recipe`,
        { details: { runId: input.runId, runRecipe: written.runRecipeName, recipe: input.recipe.name } },
      );
    }
    ({ meta: run, added, created } = written);
    if (input.budgetMicros > 0) await deps.ledger.setBudget(input.runId, input.budgetMicros);
    if (input.llm) await deps.runs.setLlmTier(input.runId, input.llm.tier, input.llm.flexFallbackAfterMs);
    if (input.share && (input.share.weight !== undefined || input.share.maxRpm !== undefined)) {
      await deps.runs.setShare(input.runId, input.share);
      run = { ...run, ...input.share };
    }
  } catch (error) {
    throw interrupted(
      error,
      `Redis failed while creating run ${input.runId}: no job was enqueued. Run the same command again with --run ${input.runId} ` +
        `(if \`pnpm status --run ${input.runId}\` shows the run, \`pnpm enqueue --resume --run ${input.runId}\` finishes it)`,
      { runId: input.runId, stage: 'create' },
    );
  }
  const options = brandJobOptions(input.attempts, input.retention);
  let offered = 0;
  try {
    // Each new job's place among the other runs' jobs, its run's weight deciding the spacing.
    // Jobs the queue holds already keep theirs (adding them again is a no-op): tagging them
    // too would move the run's later tags, and so its new brands, back by as many places.
    const fresh = await missingJobs(deps.queue, jobs.map((data) => brandJobId(data.runId, data.key)));
    const priorities = await deps.scheduler.prioritiesFor(input.runId, fresh.size, run.weight ?? DEFAULT_WEIGHT);
    let next = 0;
    for (let i = 0; i < jobs.length; i += BULK_CHUNK) {
      const chunk = jobs.slice(i, i + BULK_CHUNK);
      await deps.queue.addBulk(
        chunk.map((data) => {
          const jobId = brandJobId(data.runId, data.key);
          return { name: 'brand', data, opts: { ...options, jobId, ...(fresh.has(jobId) ? { priority: priorities[next++] as number } : {}) } };
        }),
      );
      offered += chunk.length;
    }
  } catch (error) {
    throw interrupted(
      error,
      `Redis failed while adding the jobs of run ${input.runId} (${offered} of ${jobs.length} added): the run and all its brands are stored. ` +
        `When Redis answers again, finish it with: pnpm enqueue --resume --run ${input.runId}`,
      { runId: input.runId, stage: 'jobs', added: offered, total: jobs.length },
    );
  }
  return { kind: 'enqueued', run, enqueued: jobs.length, added, created };
}

/** The ids of `jobIds` the queue does not hold (looked up in pipelined chunks). */
async function missingJobs(queue: BrandQueue, jobIds: readonly string[]): Promise<Set<string>> {
  const missing = new Set<string>();
  for (let i = 0; i < jobIds.length; i += BULK_CHUNK) {
    const chunk = jobIds.slice(i, i + BULK_CHUNK);
    const states = await Promise.all(chunk.map((id) => queue.getJobState(id)));
    chunk.forEach((id, j) => {
      if (states[j] === 'unknown') missing.add(id);
    });
  }
  return missing;
}

/** Classified errors pass through; a connection failure becomes a TransientError with what to do next. */
function interrupted(error: unknown, message: string, details: Record<string, unknown>): unknown {
  if (isBrandqError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TransientError(`${message} (${reason})`, { cause: error, details });
}
