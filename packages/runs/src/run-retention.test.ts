import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { BRAND_QUEUE, brandJobId, createBrandQueue, type BrandJobData, type BrandQueue } from '@brandq/queue';
import { QUEUE_PREFIX, runIndexKeys, runKeyList, runKeys, type RunKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { listRunsForRetention, pruneRuns } from './run-retention.js';
import { RunStore } from './run-store.js';
import type { BrandResult } from './run-types.js';

const redis = useTestRedis();
const DAY = 86_400_000;
const fields: BrandResult['fields'] = { website: 'https://a.example.com/', category: 'shoes', description: 'd', country: 'US', founded_year: 1964, sources: [] };

let client: Redis;
let queue: BrandQueue;
beforeAll(() => {
  client = redis.client();
  queue = createBrandQueue(redis.client());
});
afterAll(() => queue.close());
beforeEach(() => redis.flush());

/**
 * The keys of a run that the RunStore does not write (the ledger's, the sheet stream), each
 * written as its owner writes it. A key added to `runKeys` fails to compile here until the
 * test writes it too, so "every key of the run" stays every key.
 */
const writeOtherKey: Record<Exclude<keyof RunKeys, 'meta' | 'recipe' | 'brands' | 'results' | 'latest' | 'failed' | 'skipped' | 'history' | 'timeline'>, (key: string) => Promise<unknown>> = {
  ledger: (key) => client.hset(key, { budget_micros: 5_000_000, spent_micros: 12_345, 'llm:calls': 3 }),
  reservations: (key) => client.zadd(key, Date.now() + 60_000, 'res-1'),
  reservationAmounts: (key) => client.hset(key, 'res-1', 4_000),
  reservationProviders: (key) => client.hset(key, 'res-1', 'llm'),
  unconfirmedReservations: (key) => client.hset(key, 'res-0', 3_000),
  settledBookings: (key) => client.zadd(key, Date.now(), 'booking-1'),
  sheetWrites: (key) => client.xadd(key, '*', 'row', '2', 'values', '["x"]'),
  batchKnown: (key) => client.hset(key, 'extract.0.acme', '1'),
  batchPending: (key) => client.hset(key, 'extract.0.acme', '{"customId":"extract.0.acme"}'),
  batchIntents: (key) => client.hset(key, 'intent-1', '{"state":"submitted"}'),
  batchOutcomes: (key) => client.hset(key, 'extract.0.acme', '{"kind":"failed"}'),
};

async function writeOtherKeys(runId: string): Promise<void> {
  const keys = runKeys(runId);
  for (const [name, write] of Object.entries(writeOtherKey)) await write(keys[name as keyof typeof writeOtherKey]);
}

function brand(runId: string, key: string, rowNumber: number): BrandJobData {
  return { runId, key, name: key.toUpperCase(), rowNumber, hints: {}, source: { type: 'csv', path: `/tmp/${runId}.csv` } };
}

/** A run of `n` brands with every key of a run written, its brands recorded (success, one failure) up to `finish`. */
async function seedRun(store: RunStore, runId: string, sourceKey: string, n: number, finish = n): Promise<void> {
  const brands = Array.from({ length: n }, (_, i) => brand(runId, `b${i}`, i + 2));
  const written = await store.createOrExtendRun({ id: runId, source: brands[0]!.source, sourceKey, brands, skipped: [{ rowNumber: 99, reason: 'empty_name', message: 'row 99: empty' }] });
  expect(written.kind).toBe('written');
  await writeOtherKeys(runId);
  await store.appendHistory(runId, { at: new Date().toISOString(), action: 'budget', by: 'ops', details: { budgetMicros: 5_000_000 } });
  for (const b of brands.slice(0, finish)) {
    if (b.key === 'b1') await store.recordFailure({ runId, key: b.key, brand: b.name, rowNumber: b.rowNumber, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' });
    else await store.recordSuccess({ runId, key: b.key, brand: b.name, rowNumber: b.rowNumber, processedAt: 'now', fields });
  }
}

/** Moves the run `days` into the past, as if it had been created and ended then (its index scores too). */
async function endedDaysAgo(runId: string, days: number): Promise<void> {
  const at = Date.now() - days * DAY;
  const meta = runKeys(runId).meta;
  await client.hset(meta, 'createdAt', at - 1000, 'finishedAt', at);
  await client.zadd(runIndexKeys.all, 'XX', at - 1000, runId);
  await client.zadd(runIndexKeys.ofSource((await client.hget(meta, 'sourceKey'))!), 'XX', at - 1000, runId);
}

/** Every key in Redis (each master of a cluster), with its type. */
async function snapshotKeys(): Promise<Map<string, string>> {
  const nodes = redis.cluster ? (client as unknown as Cluster).nodes('master') : [client];
  const found = new Map<string, string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) found.set(key, await node.type(key));
    } while (cursor !== '0');
  }
  return found;
}

/** Adds one job per brand of the run and has a worker complete them (with a log line each, as the real worker writes). */
async function completeJobs(runId: string, n: number): Promise<void> {
  const ids = Array.from({ length: n }, (_, i) => brandJobId(runId, `b${i}`));
  await queue.addBulk(ids.map((jobId, i) => ({ name: 'brand', data: brand(runId, `b${i}`, i + 2), opts: { jobId, removeOnComplete: false } })));
  const worker = new Worker(BRAND_QUEUE, async (job) => void (await job.log('attempt 1: done')), { connection: redis.client(), prefix: QUEUE_PREFIX, concurrency: 4 });
  const allCompleted = async () => (await Promise.all(ids.map((id) => queue.getJobState(id)))).every((s) => s === 'completed');
  try {
    for (let i = 0; i < 400 && !(await allCompleted()); i++) await new Promise((r) => setTimeout(r, 25));
  } finally {
    await worker.close();
  }
  expect(await allCompleted()).toBe(true);
}

describe('pruneRuns', () => {
  it('deletes exactly the old ended runs: every key, their jobs and index entries, nothing of other runs', async () => {
    const store = new RunStore(client);
    // Old and ended: a completed run alone on its source, and a cancelled one sharing its source with a recent run.
    await seedRun(store, 'old-done', 'csv:/tmp/old.csv', 5);
    await completeJobs('old-done', 5);
    await endedDaysAgo('old-done', 40);
    await seedRun(store, 'old-cancelled', 'csv:/tmp/shared.csv', 4, 2);
    await store.setStatus('old-cancelled', 'cancelled', 'stopped by hand');
    await endedDaysAgo('old-cancelled', 31);
    // Kept: recent, held (paused, with a waiting job) though old, and running.
    await seedRun(store, 'recent-done', 'csv:/tmp/shared.csv', 3);
    await completeJobs('recent-done', 3);
    await endedDaysAgo('recent-done', 29);
    await seedRun(store, 'old-paused', 'csv:/tmp/paused.csv', 3, 1);
    await store.setStatus('old-paused', 'paused', 'quota');
    await endedDaysAgo('old-paused', 60);
    // Waiting jobs (added once no worker runs): one of the cancelled run, one of the held run.
    await queue.add('brand', brand('old-cancelled', 'b3', 5), { jobId: brandJobId('old-cancelled', 'b3') });
    await queue.add('brand', brand('old-paused', 'b2', 4), { jobId: brandJobId('old-paused', 'b2') });
    await seedRun(store, 'running', 'csv:/tmp/running.csv', 3, 1);

    const before = await snapshotKeys();
    const dry = await pruneRuns({ redis: client, runs: store, queue }, { olderThanMs: 30 * DAY });
    expect(await snapshotKeys()).toEqual(before);
    expect(dry.dryRun).toBe(true);
    expect(dry.runs.map((r) => r.id).sort()).toEqual(['old-cancelled', 'old-done']);
    const oldDone = dry.runs.find((r) => r.id === 'old-done')!;
    expect(oldDone.keys.sort()).toEqual(runKeyList('old-done').sort());
    expect(oldDone).toMatchObject({ status: 'completed', jobs: 5, sourceKey: 'csv:/tmp/old.csv' });
    expect(oldDone.keyBytes).toBeGreaterThan(1000);
    expect(oldDone.jobBytes).toBeGreaterThan(5 * 200);
    expect(dry.runs.find((r) => r.id === 'old-cancelled')).toMatchObject({ status: 'cancelled', jobs: 1 });
    expect(dry.totals).toMatchObject({ runs: 2, jobs: 6, keys: oldDone.keys.length + dry.runs.find((r) => r.id === 'old-cancelled')!.keys.length });

    const done = await pruneRuns({ redis: client, runs: store, queue }, { olderThanMs: 30 * DAY, dryRun: false });
    expect(done).toMatchObject({ dryRun: false, kept: [], totals: { runs: 2, jobs: 6, keys: dry.totals.keys } });
    const after = await snapshotKeys();
    const jobKeys = (runId: string, n: number) => Array.from({ length: n }, (_, i) => queue.toKey(brandJobId(runId, `b${i}`))).flatMap((k) => [k, `${k}:logs`]);
    // The source index of a source left without runs empties, so Redis drops it.
    const gone = new Set([...runKeyList('old-done'), ...runKeyList('old-cancelled'), ...jobKeys('old-done', 5), queue.toKey(brandJobId('old-cancelled', 'b3')), runIndexKeys.ofSource('csv:/tmp/old.csv')]);
    expect([...before.keys()].filter((k) => !after.has(k)).sort()).toEqual([...gone].filter((k) => before.has(k)).sort());
    expect([...after.keys()].filter((k) => !before.has(k))).toEqual([]);
    // BullMQ's own keys stay (the other runs' jobs are in them), without the pruned jobs.
    expect(await queue.getJobState(brandJobId('recent-done', 'b0'))).toBe('completed');
    expect(await queue.getJobState(brandJobId('old-paused', 'b2'))).toBe('waiting');
    expect(await queue.getJobState(brandJobId('old-done', 'b0'))).toBe('unknown');

    // The indexes: gone from all three, the other runs' entries and pointers unchanged.
    expect(await client.zrange(runIndexKeys.all, 0, -1)).toEqual(expect.arrayContaining(['recent-done', 'old-paused', 'running']));
    expect(await client.zcard(runIndexKeys.all)).toBe(3);
    expect(await client.hget(runIndexKeys.bySource, 'csv:/tmp/old.csv')).toBeNull();
    expect(await client.hget(runIndexKeys.bySource, 'csv:/tmp/shared.csv')).toBe('recent-done');
    expect(await client.zrange(runIndexKeys.ofSource('csv:/tmp/shared.csv'), 0, -1)).toEqual(['recent-done']);
    expect(await store.getRun('recent-done')).toMatchObject({ status: 'completed', succeeded: 2, failed: 1 });

    // Nothing left to prune.
    expect((await pruneRuns({ redis: client, runs: store, queue }, { olderThanMs: 30 * DAY, dryRun: false })).totals.runs).toBe(0);
  });

  it('keeps a run resumed after it was listed, and one whose job a worker holds', async () => {
    const store = new RunStore(client);
    await seedRun(store, 'busy', 'csv:/tmp/busy.csv', 2);
    await endedDaysAgo('busy', 10);
    await queue.add('brand', brand('busy', 'b0', 2), { jobId: brandJobId('busy', 'b0') });
    // A duplicate delivery: a worker takes the job and holds its lock while the prune runs.
    const worker = new Worker(BRAND_QUEUE, null, { connection: redis.client(), prefix: QUEUE_PREFIX });
    const job = await worker.getNextJob('holder-token');
    expect(job?.id).toBe(brandJobId('busy', 'b0'));

    const report = await pruneRuns({ redis: client, runs: store, queue }, { olderThanMs: DAY, dryRun: false });
    expect(report).toMatchObject({ runs: [], kept: [{ id: 'busy', reason: 'jobs_active' }] });
    expect(await store.getRun('busy')).toMatchObject({ status: 'completed' });
    await job!.moveToCompleted('done', 'holder-token', false);
    await worker.close();
    expect((await pruneRuns({ redis: client, runs: store, queue }, { olderThanMs: DAY, dryRun: false })).runs.map((r) => r.id)).toEqual(['busy']);
    expect(await store.getRun('busy')).toBeUndefined();

    // Deleting checks the run is still ended no later than the cutoff, in the same step as the delete.
    await seedRun(store, 'resumed', 'csv:/tmp/resumed.csv', 2);
    await endedDaysAgo('resumed', 10);
    const cutoff = Date.now() - DAY;
    await store.createOrExtendRun({ id: 'resumed', source: brand('resumed', 'x', 2).source, sourceKey: 'csv:/tmp/resumed.csv', brands: [brand('resumed', 'new', 9)], skipped: [] });
    expect(await store.deleteEndedRun({ id: 'resumed', sourceKey: 'csv:/tmp/resumed.csv' }, cutoff)).toBe(false);
    expect(await store.getRun('resumed')).toMatchObject({ status: 'running', total: 3 });
  });

  it('refuses a negative or non-finite duration', async () => {
    const deps = { redis: client, runs: new RunStore(client), queue };
    await expect(pruneRuns(deps, { olderThanMs: -1 })).rejects.toThrow(RangeError);
    await expect(pruneRuns(deps, { olderThanMs: Number.NaN })).rejects.toThrow(RangeError);
  });
});

describe('listRunsForRetention', () => {
  it('lists runs with when they ended and when their keys expire', async () => {
    const store = new RunStore(client, { retentionDays: 30 });
    await seedRun(store, 'list-done', 'csv:/tmp/a.csv', 2);
    await seedRun(store, 'list-open', 'csv:/tmp/b.csv', 2, 1);
    const listed = await listRunsForRetention({ runs: store });
    const done = listed.find((l) => l.run.id === 'list-done')!;
    expect(done.ended).toBe(true);
    expect(done.endedAt).toBe(done.run.finishedAt);
    expect(done.expiresAt! - done.endedAt!).toBeGreaterThan(30 * DAY - 5_000);
    expect(done.expiresAt! - done.endedAt!).toBeLessThanOrEqual(30 * DAY + 5_000);
    expect(listed.find((l) => l.run.id === 'list-open')).toEqual({ run: expect.objectContaining({ status: 'running' }), ended: false });
  });
});
