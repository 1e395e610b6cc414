import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fakes } from '@brandq/fakes';
import { CostLedger } from '@brandq/ledger';
import { createBrandQueue } from '@brandq/queue';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { enqueue, startWorkers, stopWorkers, waitForRun, workerEnv, writeBrandsCsv, startOpenFakes } from './test-support.js';

const redis = useTestRedis();
let fakes: Fakes;
let dir: string;
let workers: SpawnedProcess[] = [];

beforeAll(async () => {
  // Injected failures: the ledger must still match the fakes' billing to the micro-dollar.
  fakes = await startOpenFakes({ openai: { latencyMs: { min: 5, max: 30 }, faultRates: { 500: 0.05 }, seed: 21 }, tavily: { latencyMs: { min: 5, max: 20 }, faultRates: { 500: 0.05 }, seed: 22 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-budget-'));
});
afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

describe('a budget across a fleet of workers', () => {
  it('is never exceeded, holds the rest of the run queued, and resumes to completion with a higher budget', { timeout: 240_000 }, async () => {
    const names = Array.from({ length: 60 }, (_, i) => `Budget Brand ${i + 1}`);
    const csv = await writeBrandsCsv(dir, names);
    const env = workerEnv(fakes, redis.url, { JOB_BACKOFF_BASE_SECONDS: '0.2' });
    // One brand costs about $0.0081 (one basic search $0.008 + a small LLM call): $0.20 covers ~24.
    await enqueue(['--csv', csv, '--run', 'budget-run', '--budget', '0.20', '--allow-partial'], env);
    workers = startWorkers(3, env, 8);

    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    const ledger = new CostLedger(client);
    const queue = createBrandQueue(client);
    const held = await waitForRun(runs, 'budget-run', (r) => r.status === 'budget_exhausted', 90_000);
    expect(held.succeeded).toBeLessThan(60);
    // Let the calls in flight settle, then check the books.
    const deadline = Date.now() + 30_000;
    while ((await queue.getActiveCount()) > 0 || (await ledger.snapshot('budget-run')).reservedMicros > 0) {
      if (Date.now() > deadline) throw new Error(`calls still in flight after 30 s: ${JSON.stringify(await queue.getJobCounts())}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const atLimit = await ledger.snapshot('budget-run');
    expect(atLimit.spentMicros).toBeLessThanOrEqual(atLimit.budgetMicros);
    expect(atLimit.spentMicros).toBeGreaterThan(atLimit.budgetMicros * 0.9);
    const status = spawnTs('apps/producer/src/status.ts', ['--run', 'budget-run'], env);
    expect(await waitForExit(status, 30_000)).toBe(0);
    expect(status.output()).toMatch(/\[BUDGET\] Budget limit reached: \$0\.\d\d \/ \$0\.20/);
    const paused = await runs.getRun('budget-run');
    expect(paused?.failed).toBe(0);
    const queued = await queue.getJobCounts('delayed', 'waiting');
    expect((queued.delayed ?? 0) + (queued.waiting ?? 0)).toBeGreaterThan(0);

    await enqueue(['--resume', '--run', 'budget-run', '--budget', '1.00'], env);
    const done = await waitForRun(runs, 'budget-run', (r) => r.status === 'completed', 120_000);
    expect(done).toMatchObject({ total: 60, succeeded: 60, failed: 0 });
    const final = await ledger.snapshot('budget-run');
    expect(final.spentMicros).toBeLessThanOrEqual(1_000_000);
    // brandq's books equal the providers' billing, to the micro-dollar.
    expect(final.providers.llm.costMicros).toBe(fakes.openai.ledger.billedMicros());
    expect(final.providers.tavily.costMicros).toBe(fakes.tavily.ledger.billedMicros());
    expect(final.spentMicros).toBe(fakes.openai.ledger.billedMicros() + fakes.tavily.ledger.billedMicros());
    await queue.close();
    client.disconnect();
  });
});
