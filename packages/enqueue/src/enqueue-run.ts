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

export function jobDataFor(runId: string, loaded: LoadedSource, brand: BrandInput, noCache = false): BrandJobData {
  const hints = Object.fromEntries(Object.entries(brand.hints).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
  return { runId, key: brand.key, name: brand.name, rowNumber: brand.rowNumber, hints, source: loaded.source, ...(noCache ? { noCache } : {}) };
}

/**
 * Creates the run (all its brands, in one transaction) and then enqueues one job per brand
 * with a deterministic id. If the process dies in between, enqueueing the same run again
 * adds exactly the missing jobs: BullMQ ignores ids it already holds.
 */
export async function enqueueRun(deps: EnqueueRunDeps, input: EnqueueRunInput): Promise<{ run: RunMeta; enqueued: number }> {
  const jobs = input.loaded.brands.map((b) => jobDataFor(input.runId, input.loaded, b, input.noCache));
  const existing = await deps.runs.getRun(input.runId);
  const run =
    existing ??
    (await deps.runs.createRun({
      id: input.runId,
      source: input.loaded.source,
      sourceKey: input.loaded.sourceKey,
      brands: jobs,
      skipped: input.loaded.skipped,
    }));
  if (input.budgetMicros > 0) await deps.ledger.setBudget(input.runId, input.budgetMicros);
  const options = brandJobOptions(input.attempts, input.retention);
  for (let i = 0; i < jobs.length; i += BULK_CHUNK) {
    const chunk = jobs.slice(i, i + BULK_CHUNK);
    await deps.queue.addBulk(chunk.map((data) => ({ name: 'brand', data, opts: { ...options, jobId: brandJobId(data.runId, data.key) } })));
  }
  return { run, enqueued: jobs.length };
}
