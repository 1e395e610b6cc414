import type { BrandQueue } from '@brandq/queue';
import { brandJobId, brandJobOptions, type RetentionOptions } from '@brandq/queue';
import type { RunStore } from '@brandq/runs';

/**
 * Puts every unfinished brand of a run back in the queue: brands with a result or a final
 * failure are skipped, held (delayed) jobs are promoted, missing jobs are re-added with
 * their deterministic ids. With `retryFailed`, failed brands are reopened first.
 */
export async function requeueRun(
  runs: RunStore,
  queue: BrandQueue,
  runId: string,
  opts: { retryFailed: boolean; attempts: number; retention: RetentionOptions },
): Promise<{ requeued: number; reopened: number }> {
  const failedKeys: string[] = [];
  for await (const f of runs.failures(runId)) failedKeys.push(f.key);
  const reopenKeys = opts.retryFailed ? failedKeys : [];
  const { reopened } = await runs.reopen(runId, reopenKeys);
  const finished = new Set(opts.retryFailed ? [] : failedKeys);
  for await (const r of runs.results(runId)) finished.add(r.key);

  const options = brandJobOptions(opts.attempts, opts.retention);
  let requeued = 0;
  const batch: Parameters<BrandQueue['addBulk']>[0] = [];
  for await (const brand of runs.brands(runId)) {
    if (finished.has(brand.key)) continue;
    const id = brandJobId(runId, brand.key);
    const job = await queue.getJob(id);
    if (job) {
      const state = await job.getState();
      if (state === 'delayed') await job.promote();
      if (state === 'failed' || state === 'completed') await job.remove();
      else {
        requeued++;
        continue;
      }
    }
    batch.push({ name: 'brand', data: brand, opts: { ...options, jobId: id } });
    requeued++;
  }
  for (let i = 0; i < batch.length; i += 500) await queue.addBulk(batch.slice(i, i + 500));
  return { requeued, reopened };
}
