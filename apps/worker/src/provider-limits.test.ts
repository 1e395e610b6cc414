import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakes, type Fakes } from '@brandq/fakes';
import { createBrandQueue } from '@brandq/queue';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { useTestRedis, type SpawnedProcess } from '@brandq/testing';
import { enqueue, shippedWorkerEnv, startWorkers, stopWorkers, waitForRun, waitForWorkersReady, writeBrandsCsv } from './test-support.js';

/**
 * The fleet against providers that enforce their limits the way OpenAI says it does: over
 * one-second slices of the minute (a minute's allowance in one second draws 429s), with
 * tokens counted at admission as the prompt plus `max_tokens`, and refused requests counted
 * too. The workers run the shipped limiter defaults (burst, headroom, concurrency, pacing);
 * only the limits themselves are set, to what the fakes grant, as a user would copy them
 * from their provider account. Three processes, four jobs each, 36 brands.
 */
const redis = useTestRedis();
const BRANDS = Array.from({ length: 36 }, (_, i) => `Sliced Brand ${String(i + 1).padStart(2, '0')}`);
const LIMITS = { llmRpm: 300, llmTpm: 150_000, tavilyRpm: 300 };

let fakes: Fakes;
let workers: SpawnedProcess[] = [];

beforeAll(async () => {
  fakes = await startFakes({
    openai: { rpm: LIMITS.llmRpm, tpm: LIMITS.llmTpm, latencyMs: { min: 20, max: 80 }, seed: 5 },
    tavily: { rpm: LIMITS.tavilyRpm, latencyMs: { min: 10, max: 40 }, seed: 6 },
  });
});

afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

describe('the fleet against providers that enforce limits per slice and count tokens at admission', () => {
  it('draws no 429 at the shipped limiter defaults and pays one call per brand and provider', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brandq-sliced-'));
    const csv = await writeBrandsCsv(dir, BRANDS);
    const env = shippedWorkerEnv(fakes, redis.url, {
      // The account's limits, as the fakes grant them; every other limiter setting is the shipped default.
      OPENAI_RPM_LIMIT: String(LIMITS.llmRpm),
      OPENAI_TPM_LIMIT: String(LIMITS.llmTpm),
      TAVILY_RPM_LIMIT: String(LIMITS.tavilyRpm),
    });
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    const queue = createBrandQueue(client);
    workers = startWorkers(3, env, 4);
    await waitForWorkersReady(queue, 3);
    await enqueue(['--csv', csv, '--run', 'sliced-run'], env);
    const run = await waitForRun(runs, 'sliced-run', (r) => r.succeeded + r.failed >= r.total, 100_000);
    expect(run).toMatchObject({ status: 'completed', total: BRANDS.length, succeeded: BRANDS.length });

    // Ground truth from the providers' own ledgers.
    const llm = fakes.openai.ledger;
    const tavily = fakes.tavily.ledger;
    expect(llm.withStatus(429).map((e) => e.errorCode), 'LLM 429s').toEqual([]);
    expect(tavily.withStatus(429).length, 'Tavily 429s').toBe(0);
    const llmPerBrand = llm.paidCallsByBrand();
    const tavilyPerBrand = tavily.paidCallsByBrand();
    for (const brand of BRANDS) {
      expect(llmPerBrand.get(brand), `paid LLM calls for ${brand}`).toBe(1);
      expect(tavilyPerBrand.get(brand), `paid searches for ${brand}`).toBe(1);
    }
    await queue.close();
    client.disconnect();
  });
});
