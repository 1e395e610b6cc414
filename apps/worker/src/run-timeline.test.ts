import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fakes } from '@brandq/fakes';
import { CostLedger } from '@brandq/ledger';
import { createLimiter, type DeferralReason } from '@brandq/limiter';
import { createRedis } from '@brandq/redis';
import { RunStore, RunTimeline, type TimelineCounts } from '@brandq/runs';
import { useTestRedis, type SpawnedProcess } from '@brandq/testing';
import { enqueue, startOpenFakes, startWorkers, stopWorkers, waitForRun, workerEnv, writeBrandsCsv } from './test-support.js';

/**
 * Each run's timeline as a real worker records it, against what others count on their own:
 * the run's outcomes, its ledger, the 429s the fake provider sent, and the limiter's
 * fleet-wide count of waits (every wait belongs to a job of one of the runs).
 */
const redis = useTestRedis();
const REASONS: readonly DeferralReason[] = ['requests', 'tokens', 'concurrency', 'stagger', 'cooldown'];

let fakes: Fakes;
let workers: SpawnedProcess[] = [];

beforeAll(async () => {
  // Slow LLM answers under a fleet concurrency of 1: jobs wait for each other.
  fakes = await startOpenFakes({ openai: { latencyMs: { min: 80, max: 150 }, seed: 61 }, tavily: { latencyMs: { min: 2, max: 10 }, seed: 62 } });
});
afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

function totals(points: readonly TimelineCounts[]): TimelineCounts {
  const sum: TimelineCounts = { done: 0, failed: 0, spentMicros: points.at(-1)?.spentMicros ?? 0, rateLimited: 0, waits: { requests: 0, tokens: 0, concurrency: 0, stagger: 0, cooldown: 0 } };
  for (const p of points) {
    sum.done += p.done;
    sum.failed += p.failed;
    sum.rateLimited += p.rateLimited;
    for (const r of REASONS) sum.waits[r] += p.waits[r];
  }
  return sum;
}

describe('the run timeline recorded by workers', () => {
  it('counts each run its brands, spend, 429s and limiter waits, as the run, its ledger, the provider and the limiter do', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brandq-timeline-'));
    const env = workerEnv(fakes, redis.url, {
      OPENAI_MAX_CONCURRENCY: '1',
      OPENAI_RETRY_MAX_ATTEMPTS: '3',
      OPENAI_BACKOFF_BASE_SECONDS: '0.2',
      JOB_BACKOFF_BASE_SECONDS: '0.2',
    });
    const limited = 'Always Limited Co';
    // Every attempt of one brand of run A answered 429: three attempts, then it fails.
    fakes.openai.injectFaults(Array.from({ length: 3 }, () => ({ status: 429, retryAfterMs: 300, brand: limited })));
    await enqueue(['--csv', await writeBrandsCsv(dir, [limited, 'Alpha Two', 'Alpha Three', 'Alpha Four'], 'a.csv'), '--run', 'timeline-a'], env);
    await enqueue(['--csv', await writeBrandsCsv(dir, ['Beta One', 'Beta Two', 'Beta Three', 'Beta Four'], 'b.csv'), '--run', 'timeline-b'], env);

    const client = createRedis(redis.url);
    const limiter = createLimiter({ redis: client, providers: { llm: { rpm: 1, burst: 1 }, tavily: { rpm: 1, burst: 1 } } });
    const deferrals = async () => {
      const [llm, tavily] = [await limiter.stats('llm'), await limiter.stats('tavily')];
      return Object.fromEntries(REASONS.map((r) => [r, llm.deferrals[r] + tavily.deferrals[r]])) as Record<DeferralReason, number>;
    };
    const waitsBefore = await deferrals();
    workers = startWorkers(1, env, 4);
    const runs = new RunStore(client);
    for (const id of ['timeline-a', 'timeline-b']) await waitForRun(runs, id, (r) => r.status === 'completed', 60_000);
    // Recording is fire-and-forget: a stopped worker has sent everything it recorded.
    await stopWorkers(workers);
    workers = [];

    const timeline = new RunTimeline(client);
    const ledger = new CostLedger(client);
    const [a, b] = [totals((await timeline.read('timeline-a')).points), totals((await timeline.read('timeline-b')).points)];
    expect(a).toMatchObject({ done: 3, failed: 1, spentMicros: (await ledger.snapshot('timeline-a')).spentMicros });
    expect(b).toMatchObject({ done: 4, failed: 0, spentMicros: (await ledger.snapshot('timeline-b')).spentMicros });
    expect(b.spentMicros).toBeGreaterThan(0);
    const answered429 = fakes.openai.ledger.filter((e) => e.status === 429);
    expect(answered429.map((e) => e.brand)).toEqual([limited, limited, limited]);
    expect([a.rateLimited, b.rateLimited]).toEqual([3, 0]);

    const waitsAfter = await deferrals();
    const waited = Object.fromEntries(REASONS.map((r) => [r, waitsAfter[r] - waitsBefore[r]]));
    expect(Object.fromEntries(REASONS.map((r) => [r, a.waits[r] + b.waits[r]]))).toEqual(waited);
    expect(waited.concurrency).toBeGreaterThan(0);
    await limiter.close();
    client.disconnect();
  });
});
