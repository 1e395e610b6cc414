import { describe, expect, it } from 'vitest';
import type { BrandJobData } from '@brandq/queue';
import { useTestRedis } from '@brandq/testing';
import { RunStore } from './run-store.js';
import type { BrandFacts } from './run-types.js';

const redis = useTestRedis();

const source = { type: 'csv' as const, path: '/tmp/brands.csv' };
const brand = (runId: string, key: string, rowNumber: number): BrandJobData => ({ runId, key, name: key.toUpperCase(), rowNumber, hints: {}, source });
const facts: BrandFacts = { website: 'https://a.example.com/', category: 'shoes', description: 'd', country: 'US', founded_year: 1964, sources: [] };

async function newRun(store: RunStore, id: string, n: number) {
  return store.createRun({
    id,
    source,
    sourceKey: 'csv:/tmp/brands.csv',
    brands: Array.from({ length: n }, (_, i) => brand(id, `b${i}`, i + 2)),
    skipped: [{ rowNumber: 9, reason: 'empty_name', message: 'row 9: empty brand name' }],
  });
}

describe('RunStore', () => {
  it('creates a run with its brands, skipped rows and an index by source', async () => {
    const store = new RunStore(redis.client());
    const run = await newRun(store, 'run-a', 3);
    expect(run).toMatchObject({ id: 'run-a', status: 'running', total: 3, succeeded: 0, failed: 0, skipped: 1 });
    expect(await store.latestRunForSource('csv:/tmp/brands.csv')).toBe('run-a');
    const brands = [];
    for await (const b of store.brands('run-a')) brands.push(b.key);
    expect(brands.sort()).toEqual(['b0', 'b1', 'b2']);
  });

  it('records each brand once, moves a retried failure to success, and completes the run', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-b', 2);
    const ok = { runId: 'run-b', key: 'b0', brand: 'B0', rowNumber: 2, processedAt: 'now', ...facts };
    expect(await store.recordSuccess(ok)).toMatchObject({ recorded: true, succeeded: 1, status: 'running' });
    // A duplicate delivery after a crash changes nothing.
    expect(await store.recordSuccess(ok)).toMatchObject({ recorded: false, succeeded: 1 });
    const failure = { runId: 'run-b', key: 'b1', brand: 'B1', rowNumber: 3, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' };
    expect(await store.recordFailure(failure)).toMatchObject({ recorded: true, failed: 1, status: 'completed' });
    expect(await store.recordFailure({ ...failure, key: 'b0' })).toMatchObject({ recorded: false, succeeded: 1, failed: 1 });
    expect(await store.recordSuccess({ ...ok, key: 'b1', brand: 'B1' })).toMatchObject({ recorded: true, succeeded: 2, failed: 0 });
    const failures = [];
    for await (const f of store.failures('run-b')) failures.push(f);
    expect(failures).toEqual([]);
    expect((await store.getRun('run-b'))?.finishedAt).toBeGreaterThan(0);
  });

  it('keeps a held status (budget, pause) instead of completing over it', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-c', 1);
    await store.setStatus('run-c', 'budget_exhausted', 'budget reached');
    await store.recordSuccess({ runId: 'run-c', key: 'b0', brand: 'B0', rowNumber: 2, processedAt: 'now', ...facts });
    expect(await store.getRun('run-c')).toMatchObject({ status: 'budget_exhausted', statusReason: 'budget reached' });
  });

  it('resumes a held run to running while brands are open, and to completed when none are left', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-d', 2);
    const ok = { runId: 'run-d', key: 'b0', brand: 'B0', rowNumber: 2, processedAt: 'now', ...facts };
    await store.recordSuccess(ok);
    await store.setStatus('run-d', 'paused', 'quota');
    expect(await store.reopen('run-d', [])).toEqual({ reopened: 0, status: 'running' });

    // The last brand finishes while the run is held; a resume afterwards has nothing left to wait for.
    await store.setStatus('run-d', 'budget_exhausted', 'budget reached');
    await store.recordSuccess({ ...ok, key: 'b1', brand: 'B1' });
    expect(await store.reopen('run-d', [])).toEqual({ reopened: 0, status: 'completed' });
    expect(await store.getRun('run-d')).toMatchObject({ status: 'completed', succeeded: 2 });
    expect((await store.getRun('run-d'))?.statusReason).toBeUndefined();
    expect((await store.getRun('run-d'))?.finishedAt).toBeGreaterThan(0);
  });

  it('reopens failed brands for --retry-failed, and resuming a completed run twice keeps it completed', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-e', 1);
    const failure = { runId: 'run-e', key: 'b0', brand: 'B0', rowNumber: 2, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' };
    expect(await store.recordFailure(failure)).toMatchObject({ status: 'completed' });
    expect(await store.reopen('run-e', [])).toEqual({ reopened: 0, status: 'completed' });
    expect(await store.reopen('run-e', ['b0'])).toEqual({ reopened: 1, status: 'running' });
    expect(await store.getRun('run-e')).toMatchObject({ status: 'running', failed: 0 });
    expect((await store.getRun('run-e'))?.finishedAt).toBeUndefined();
  });
});
