import { afterEach, describe, expect, it } from 'vitest';
import { Worker, type Job } from 'bullmq';
import { BudgetExhaustedError, BudgetInFlightError, RateLimitedError, RunThrottledError, type BrandqError } from '@brandq/errors';
import { createLogger } from '@brandq/logger';
import { BUDGET_EPOCH_FIELD } from '@brandq/ledger';
import { QUEUE_PREFIX, runKeys } from '@brandq/redis';
import { BRAND_QUEUE, brandJobId, createBrandQueue, type BrandJobData } from '@brandq/queue';
import { RunStore } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import type { BrandPipeline } from './brand-pipeline.js';
import { createBrandJobProcessor, type StoredJobData } from './brand-job-processor.js';

const redis = useTestRedis();
const logger = createLogger({ name: 'processor-test', level: 'silent', format: 'json' });
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A pipeline whose every brand fails with `error`: the processor's handling is what is under test. */
function failingWith(error: BrandqError): BrandPipeline {
  return { process: () => Promise.reject(error) } as unknown as BrandPipeline;
}

/**
 * Runs one job of `runId` through the real processor on a real BullMQ worker and returns
 * how long it was delayed (ms from its attempt) once it lands in the delayed set.
 */
async function delayAfterOneAttempt(runId: string, error: BrandqError): Promise<number> {
  const client = redis.client();
  const runs = new RunStore(client);
  const brand: BrandJobData = { runId, key: 'acme', name: 'Acme', rowNumber: 2, hints: {}, source: { type: 'csv', path: 'b.csv' } as BrandJobData['source'] };
  await runs.createOrExtendRun({ id: runId, source: brand.source, sourceKey: `csv:${runId}`, brands: [brand], skipped: [] });
  const queue = createBrandQueue(client);
  closers.push(() => queue.close());
  const processor = createBrandJobProcessor({ pipeline: failingWith(error), runs, logger, rateLimitMaxAttempts: 5, rateLimitBackoffBaseMs: 2000, pausedRecheckMs: 30_000 });
  let attemptedAt = 0;
  const worker = new Worker<StoredJobData>(
    BRAND_QUEUE,
    (job: Job<StoredJobData>, token?: string) => {
      attemptedAt = Date.now();
      return processor(job, token);
    },
    { connection: redis.client(), prefix: QUEUE_PREFIX, concurrency: 1 },
  );
  closers.push(() => worker.close());
  await queue.add(brand.name, brand, { jobId: brandJobId(runId, brand.key) });
  for (let i = 0; i < 100; i += 1) {
    const delayed = await queue.getDelayed();
    const job = delayed.find((j) => j.id === brandJobId(runId, brand.key));
    if (job) {
      const score = Number(await client.zscore(`${QUEUE_PREFIX}:${BRAND_QUEUE}:delayed`, job.id!));
      // BullMQ scores delayed jobs as timestamp * 0x1000 + a counter.
      return Math.floor(score / 0x1000) - attemptedAt;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the job never reached the delayed set');
}

describe('brand job processor', () => {
  it('never waits less than the 2 s floor after a 429, whatever wait the provider hints', async () => {
    const waited = await delayAfterOneAttempt('proc-429', new RateLimitedError('429: Please try again in 20ms', { provider: 'llm', retryAfterMs: 20 }));
    expect(waited).toBeGreaterThanOrEqual(1900);
    expect(waited).toBeLessThan(2500);
  });

  it('honours a provider hint longer than the floor', async () => {
    const waited = await delayAfterOneAttempt('proc-429-long', new RateLimitedError('429', { provider: 'llm', retryAfterMs: 7000 }));
    expect(waited).toBeGreaterThanOrEqual(6900);
  });

  it('waits for in-flight reservations without stopping the run', async () => {
    const waited = await delayAfterOneAttempt('proc-inflight', new BudgetInFlightError('in flight', { details: { inFlightMicros: 10 } }));
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThan(5000);
    expect((await new RunStore(redis.client()).getRun('proc-inflight'))?.status).toBe('running');
  });

  it("gives the worker slot back when the run is at its own ceiling: the job waits for the run's next slot, no attempt used, nothing in its history", async () => {
    const waited = await delayAfterOneAttempt('proc-ceiling', new RunThrottledError('at its ceiling', { provider: 'llm', retryAfterMs: 1500 }));
    expect(waited).toBeGreaterThanOrEqual(1400);
    expect(waited).toBeLessThan(2000);
    const queue = createBrandQueue(redis.client());
    closers.push(() => queue.close());
    const job = await queue.getJob(brandJobId('proc-ceiling', 'acme'));
    expect(job?.attemptsMade).toBe(0);
    expect((job?.data as StoredJobData | undefined)?.history).toBeUndefined();
    expect((await new RunStore(redis.client()).getRun('proc-ceiling'))?.status).toBe('running');
  });

  it('does not stop a run on a refusal computed under a budget a resume has since replaced', async () => {
    const client = redis.client();
    // The run's budget was raised (epoch 1 -> 2) while a worker's refusal under epoch 1 was on its way.
    await client.hset(runKeys('proc-stale').ledger, BUDGET_EPOCH_FIELD, 2);
    await delayAfterOneAttempt('proc-stale', new BudgetExhaustedError('out of budget', { details: { budgetEpoch: 1 } }));
    expect((await new RunStore(client).getRun('proc-stale'))?.status).toBe('running');
  });

  it('stops a run whose budget cannot cover the next call under the current budget', async () => {
    const client = redis.client();
    await client.hset(runKeys('proc-out').ledger, BUDGET_EPOCH_FIELD, 3);
    await delayAfterOneAttempt('proc-out', new BudgetExhaustedError('out of budget', { details: { budgetEpoch: 3 } }));
    expect((await new RunStore(client).getRun('proc-out'))?.status).toBe('budget_exhausted');
  });
});
