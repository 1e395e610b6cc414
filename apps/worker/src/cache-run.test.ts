import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fakes } from '@brandq/fakes';
import { CostLedger } from '@brandq/ledger';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { useTestRedis, type SpawnedProcess } from '@brandq/testing';
import { enqueue, startWorkers, stopWorkers, waitForRun, workerEnv, writeBrandsCsv, startOpenFakes } from './test-support.js';

const redis = useTestRedis();
let fakes: Fakes;
let dir: string;
let workers: SpawnedProcess[] = [];

beforeAll(async () => {
  fakes = await startOpenFakes({ openai: { latencyMs: { min: 20, max: 60 }, seed: 8 }, tavily: { latencyMs: { min: 10, max: 30 }, seed: 9 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-cache-'));
});
afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

describe('the result cache across runs and workers', () => {
  it('makes one paid call per brand when two runs of the same brands race over 4 workers, and none on a rerun', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `Cached Brand ${i + 1}`);
    const csv = await writeBrandsCsv(dir, names);
    const env = workerEnv(fakes, redis.url);
    // Two runs of the same source at once: every key is missed by two workers together.
    await enqueue(['--csv', csv, '--run', 'cache-a'], env);
    await enqueue(['--csv', csv, '--run', 'cache-b', '--force'], env);
    workers = startWorkers(4, env, 8);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    const ledger = new CostLedger(client);
    await waitForRun(runs, 'cache-a', (r) => r.status === 'completed', 120_000);
    await waitForRun(runs, 'cache-b', (r) => r.status === 'completed', 120_000);
    for (const name of names) {
      expect(fakes.tavily.ledger.filter((e) => e.query === `${name} brand company official website`), name).toHaveLength(1);
      expect(fakes.openai.ledger.filter((e) => e.brand === name), name).toHaveLength(1);
    }
    const [a, b] = [await ledger.snapshot('cache-a'), await ledger.snapshot('cache-b')];
    expect(a.providers.llm.calls + b.providers.llm.calls).toBe(30);
    expect(a.providers.llm.cached + b.providers.llm.cached).toBe(30);
    expect(a.spentMicros + b.spentMicros).toBe(fakes.openai.ledger.billedMicros() + fakes.tavily.ledger.billedMicros());

    // The same source again: nothing paid, everything booked as cached and saved.
    const before = fakes.openai.ledger.length + fakes.tavily.ledger.length;
    await enqueue(['--csv', csv, '--run', 'cache-c', '--force'], env);
    await waitForRun(runs, 'cache-c', (r) => r.status === 'completed', 120_000);
    expect(fakes.openai.ledger.length + fakes.tavily.ledger.length).toBe(before);
    const c = await ledger.snapshot('cache-c');
    expect(c.spentMicros).toBe(0);
    expect(c.providers.tavily).toMatchObject({ calls: 0, cached: 30 });
    expect(c.providers.llm).toMatchObject({ calls: 0, cached: 30 });
    expect(c.providers.tavily.savedMicros).toBe(30 * 8000);
    client.disconnect();
  });
});
