import { TransientError, isBrandqError } from '@brandq/errors';
import type { BrandInput } from '@brandq/input';
import type { CostLedger } from '@brandq/ledger';
import { brandJobId, brandJobOptions, type BrandJobData, type BrandQueue, type RetentionOptions } from '@brandq/queue';
import type { RunMeta, RunStore } from '@brandq/runs';
import type { LoadedSource } from './load-source.js';

export interface EnqueueRunInput {
  runId: string;
  loaded: LoadedSource;
  budgetMicros: number;
  attempts: number;
  retention: RetentionOptions;
  noCache?: boolean;
}

export interface EnqueueRunDeps {
  runs: RunStore;
  ledger: CostLedger;
  queue: BrandQueue;
}

const BULK_CHUNK = 500;

/** The hints a brand carries into its job: the non-empty hint columns of its row. */
export function hintsOf(brand: BrandInput): Record<string, string> {
  return Object.fromEntries(Object.entries(brand.hints).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
}

export function jobDataFor(runId: string, loaded: LoadedSource, brand: BrandInput, noCache = false): BrandJobData {
  return { runId, key: brand.key, name: brand.name, rowNumber: brand.rowNumber, hints: hintsOf(brand), source: loaded.source, ...(noCache ? { noCache } : {}) };
}

/**
 * Creates the run (all its brands, in one transaction) and then enqueues one job per brand
 * with a deterministic id. If the process or Redis dies in between, enqueueing the same
 * run again (`--resume --run <id>`) adds exactly the missing jobs: BullMQ ignores ids it
 * already holds. A Redis failure on the way is reported as a `TransientError` that says
 * which of the two states the run was left in and what to run next.
 */
export async function enqueueRun(deps: EnqueueRunDeps, input: EnqueueRunInput): Promise<{ run: RunMeta; enqueued: number }> {
  const jobs = input.loaded.brands.map((b) => jobDataFor(input.runId, input.loaded, b, input.noCache));
  let run: RunMeta;
  try {
    const existing = await deps.runs.getRun(input.runId);
    // A run created by a process that died before indexing it gets its index entries now.
    if (existing) await deps.runs.indexRun(existing);
    run =
      existing ??
      (await deps.runs.createRun({
        id: input.runId,
        source: input.loaded.source,
        sourceKey: input.loaded.sourceKey,
        brands: jobs,
        skipped: input.loaded.skipped,
      }));
    if (input.budgetMicros > 0) await deps.ledger.setBudget(input.runId, input.budgetMicros);
  } catch (error) {
    throw interrupted(
      error,
      `Redis failed while creating run ${input.runId}: no job was enqueued. Run the same command again with --run ${input.runId} ` +
        `(if \`pnpm status --run ${input.runId}\` shows the run, \`pnpm enqueue --resume --run ${input.runId}\` finishes it)`,
      { runId: input.runId, stage: 'create' },
    );
  }
  const options = brandJobOptions(input.attempts, input.retention);
  let added = 0;
  try {
    for (let i = 0; i < jobs.length; i += BULK_CHUNK) {
      const chunk = jobs.slice(i, i + BULK_CHUNK);
      await deps.queue.addBulk(chunk.map((data) => ({ name: 'brand', data, opts: { ...options, jobId: brandJobId(data.runId, data.key) } })));
      added += chunk.length;
    }
  } catch (error) {
    throw interrupted(
      error,
      `Redis failed while adding the jobs of run ${input.runId} (${added} of ${jobs.length} added): the run and all its brands are stored. ` +
        `When Redis answers again, finish it with: pnpm enqueue --resume --run ${input.runId}`,
      { runId: input.runId, stage: 'jobs', added, total: jobs.length },
    );
  }
  return { run, enqueued: jobs.length };
}

/** Classified errors pass through; a connection failure becomes a TransientError with what to do next. */
function interrupted(error: unknown, message: string, details: Record<string, unknown>): unknown {
  if (isBrandqError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TransientError(`${message} (${reason})`, { cause: error, details });
}
