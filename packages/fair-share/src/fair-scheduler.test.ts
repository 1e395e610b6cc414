import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { BRAND_QUEUE, brandJobId, createBrandQueue, type BrandQueue } from '@brandq/queue';
import { QUEUE_PREFIX } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { FairScheduler } from './fair-scheduler.js';

/**
 * The fair order, on a real BullMQ queue in a real Redis: the jobs a free worker slot takes
 * next are the runs' jobs in proportion to their weights, from the front of the queue,
 * whatever order the runs were enqueued in and however their weights changed.
 */

const redis = useTestRedis();
let queue: BrandQueue;
let scheduler: FairScheduler;

beforeAll(() => {
  queue = createBrandQueue(redis.client());
  scheduler = new FairScheduler(redis.client(), queue);
});
afterAll(async () => {
  await queue.close();
});
beforeEach(async () => {
  await redis.flush();
});

const source = { type: 'csv' as const, path: '/brands.csv' };

async function enqueue(runId: string, count: number, weight: number, from = 0): Promise<void> {
  const priorities = await scheduler.prioritiesFor(runId, count, weight);
  await queue.addBulk(
    priorities.map((priority, i) => {
      const key = `b${from + i}`;
      return { name: 'brand', data: { runId, key, name: key, rowNumber: from + i + 2, hints: {}, source }, opts: { jobId: brandJobId(runId, key), priority } };
    }),
  );
}

/** The runs of the jobs in the order free worker slots take them. */
async function servingOrder(): Promise<string[]> {
  const jobs = await queue.getJobs(['prioritized'], 0, -1, true);
  return jobs.map((j) => j.data.runId);
}

/** Workers take (and finish) the next `n` jobs. */
async function serve(n: number): Promise<void> {
  const jobs = await queue.getJobs(['prioritized'], 0, n - 1, true);
  for (const job of jobs) await job.remove();
}

/**
 * In every prefix of the order while every run in `weights` still has jobs, each run's
 * count stays within `slack` of its weight's share of the prefix.
 */
function unfairness(order: readonly string[], weights: ReadonlyMap<string, number>): { at: number; run: string; got: number; due: number } | undefined {
  const left = new Map<string, number>();
  for (const run of order) left.set(run, (left.get(run) ?? 0) + 1);
  const active = [...weights.keys()].filter((r) => (left.get(r) ?? 0) > 0);
  const total = active.reduce((sum, r) => sum + (weights.get(r) ?? 0), 0);
  const maxWeight = Math.max(...active.map((r) => weights.get(r) ?? 0));
  const seen = new Map<string, number>();
  for (const [i, run] of order.entries()) {
    seen.set(run, (seen.get(run) ?? 0) + 1);
    if (active.some((r) => (seen.get(r) ?? 0) >= (left.get(r) ?? 0))) return undefined;
    for (const r of active) {
      const due = ((i + 1) * (weights.get(r) ?? 0)) / total;
      const got = seen.get(r) ?? 0;
      // Tags are whole priority levels: within a level BullMQ goes in insertion order, so a
      // run may run up to one level (its weight in jobs) ahead or behind, plus one job.
      if (Math.abs(got - due) > maxWeight + 1) return { at: i + 1, run: r, got, due };
    }
  }
  return undefined;
}

describe('fair order of the runs in the one queue', () => {
  it('interleaves runs weighted 1:1:2 from the first job, whatever the order they were enqueued in', async () => {
    await enqueue('big', 300, 1);
    await enqueue('other', 300, 1);
    await enqueue('heavy', 300, 2);
    const first = (await servingOrder()).slice(0, 200);
    const count = (run: string) => first.filter((r) => r === run).length;
    expect(Math.abs(count('big') - 50)).toBeLessThanOrEqual(2);
    expect(Math.abs(count('other') - 50)).toBeLessThanOrEqual(2);
    expect(Math.abs(count('heavy') - 100)).toBeLessThanOrEqual(2);
  });

  it('serves a small run that arrives late among the next jobs, not after the big run it arrived behind', async () => {
    await enqueue('big', 2000, 1);
    await serve(1500);
    await enqueue('small', 10, 1);
    const order = await servingOrder();
    // Alone it would be served from the front; beside an equal-weight run, every second job.
    expect(order.lastIndexOf('small')).toBeLessThan(22);
  });

  it('gives a re-weighted run its new share from the front of the queue', async () => {
    await enqueue('a', 400, 1);
    await enqueue('b', 400, 1);
    await serve(100);
    const pending = (await queue.getJobs(['prioritized'], 0, -1, true)).filter((j) => j.data.runId === 'b').map((j) => j.id as string);
    await scheduler.retag('b', pending, 3);
    const first = (await servingOrder()).slice(0, 200);
    expect(Math.abs(first.filter((r) => r === 'b').length - 150)).toBeLessThanOrEqual(4);
  });

  it("re-tags only the jobs still waiting: a run's running jobs take no place, so its queued ones are not pushed back", async () => {
    await enqueue('a', 100, 1);
    await enqueue('b', 100, 1);
    // Workers take the first 60 jobs (about half of each run) and hold them.
    const worker = new Worker(BRAND_QUEUE, null, { connection: redis.client(), prefix: QUEUE_PREFIX });
    for (let i = 0; i < 60; i++) expect(await worker.getNextJob(`token-${i}`)).toBeDefined();
    const bIds = Array.from({ length: 100 }, (_, i) => brandJobId('b', `b${i}`));
    const running = (await queue.getJobs(['active'])).filter((j) => j.data.runId === 'b').length;
    expect(running).toBeGreaterThan(20);
    expect(await scheduler.retag('b', bIds, 2)).toBe(100 - running);
    const order = await servingOrder();
    // At weight 2, b's next job is at the front, and b holds two of every three places.
    expect(order.indexOf('b')).toBeLessThanOrEqual(1);
    expect(Math.abs(order.slice(0, 30).filter((r) => r === 'b').length - 20)).toBeLessThanOrEqual(3);
    await worker.close(true);
  });

  it('starts virtual time again at 0 when the fleet holds no job, so priorities never climb to their limit', async () => {
    await enqueue('first', 50, 1);
    await serve(50);
    await enqueue('second', 5, 1);
    const jobs = await queue.getJobs(['prioritized'], 0, -1, true);
    expect(jobs.map((j) => j.priority)).toEqual([2, 3, 4, 5, 6]);
  });

  it('keeps every prefix of the order fair against a model of the runs, over random enqueues, serving and weight changes', async () => {
    type Cmd = { kind: 'enqueue'; run: number; count: number; weight: number } | { kind: 'serve'; n: number } | { kind: 'reweight'; run: number; weight: number };
    const cmd: fc.Arbitrary<Cmd> = fc.oneof(
      fc.record({ kind: fc.constant('enqueue' as const), run: fc.integer({ min: 0, max: 3 }), count: fc.integer({ min: 1, max: 60 }), weight: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('serve' as const), n: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('reweight' as const), run: fc.integer({ min: 0, max: 3 }), weight: fc.integer({ min: 1, max: 4 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 12 }), async (cmds) => {
        await redis.flush();
        // The model: each run's weight and the keys it has queued.
        const weights = new Map<string, number>();
        const next = new Map<string, number>();
        for (const c of cmds) {
          if (c.kind === 'enqueue') {
            const run = `r${c.run}`;
            // A run keeps its weight once it has one (as `enqueue` without --weight does).
            const weight = weights.get(run) ?? c.weight;
            weights.set(run, weight);
            await enqueue(run, c.count, weight, next.get(run) ?? 0);
            next.set(run, (next.get(run) ?? 0) + c.count);
          } else if (c.kind === 'serve') {
            await serve(c.n);
          } else {
            const run = `r${c.run}`;
            if (!weights.has(run)) continue;
            weights.set(run, c.weight);
            const pending = (await queue.getJobs(['prioritized'], 0, -1, true)).filter((j) => j.data.runId === run).map((j) => j.id as string);
            await scheduler.retag(run, pending, c.weight);
          }
          const order = await servingOrder();
          const broken = unfairness(order, weights);
          if (broken) throw new Error(`unfair after ${JSON.stringify(c)}: ${JSON.stringify(broken)} in ${order.join(',')}`);
        }
      }),
      { numRuns: 60, verbose: fc.VerbosityLevel.Verbose },
    );
  }, 120_000);
});
