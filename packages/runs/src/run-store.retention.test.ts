import { beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { BrandJobData } from '@brandq/queue';
import { runIndexKeys, runKeyList, runKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { RunStore } from './run-store.js';
import type { BrandResult } from './run-types.js';

const redis = useTestRedis();
const DAY = 86_400_000;
const fields: BrandResult['fields'] = { website: 'https://a.example.com/', category: 'shoes', description: 'd', country: 'US', founded_year: 1964, sources: [] };
let client: Redis;
beforeEach(async () => {
  client ??= redis.client();
  await redis.flush();
});

const source = (runId: string) => ({ type: 'csv' as const, path: `/tmp/${runId}.csv` });
const brand = (runId: string, key: string): BrandJobData => ({ runId, key, name: key.toUpperCase(), rowNumber: 2, hints: {}, source: source(runId) });

async function create(store: RunStore, runId: string, keys: string[]): Promise<void> {
  const written = await store.createOrExtendRun({ id: runId, source: source(runId), sourceKey: `csv:${runId}`, brands: keys.map((k) => brand(runId, k)), skipped: [] });
  expect(written.kind).toBe('written');
  // Keys other writers add to the run while it runs (the ledger, the sheet stream) expire with it too.
  await client.hset(runKeys(runId).ledger, 'spent_micros', 1000);
  await client.xadd(runKeys(runId).sheetWrites, '*', 'row', '2');
}

const succeed = (store: RunStore, runId: string, key: string) => store.recordSuccess({ runId, key, brand: key, rowNumber: 2, processedAt: 'now', fields });
const fail = (store: RunStore, runId: string, key: string) =>
  store.recordFailure({ runId, key, brand: key, rowNumber: 2, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' });

/** PTTL of every existing key of the run (-1 = kept for good). */
async function ttls(runId: string): Promise<number[]> {
  const all = await Promise.all(runKeyList(runId).map((key) => client.pttl(key)));
  return all.filter((ttl) => ttl !== -2);
}

/** Every existing key of the run expires in (days - 1 min, days]. */
async function expectExpiringIn(runId: string, days: number): Promise<void> {
  const found = await ttls(runId);
  expect(found.length).toBeGreaterThanOrEqual(4); // meta, brands, ledger, sheet stream at least
  for (const ttl of found) {
    expect(ttl).toBeGreaterThan(days * DAY - 60_000);
    expect(ttl).toBeLessThanOrEqual(days * DAY);
  }
}

async function expectKept(runId: string): Promise<void> {
  const found = await ttls(runId);
  expect(found.length).toBeGreaterThanOrEqual(4);
  expect(found.every((ttl) => ttl === -1)).toBe(true);
}

describe('RunStore retention', () => {
  it('gives every key of a run the retention when its last brand completes it, and none before', async () => {
    const store = new RunStore(client, { retentionDays: 30 });
    await create(store, 'r-done', ['a', 'b']);
    await succeed(store, 'r-done', 'a');
    await expectKept('r-done');
    await fail(store, 'r-done', 'b');
    await expectExpiringIn('r-done', 30);
    expect((await ttls('r-done')).length).toBe(9); // meta, recipe, brands, results, latest, failed, ledger, sheet stream, timeline
  });

  it('persists the keys again when an expiring run is extended or resumed, and expires them when it ends again', async () => {
    const store = new RunStore(client, { retentionDays: 30 });
    await create(store, 'r-again', ['a']);
    await fail(store, 'r-again', 'a');
    await expectExpiringIn('r-again', 30);

    // Extended with a new brand: running again, kept.
    await store.createOrExtendRun({ id: 'r-again', source: source('r-again'), sourceKey: 'csv:r-again', brands: [brand('r-again', 'b')], skipped: [] });
    await expectKept('r-again');
    await succeed(store, 'r-again', 'b');
    await expectExpiringIn('r-again', 30);

    // --retry-failed: the failed brand reopened, kept until it ends.
    expect(await store.reopen('r-again', ['a'])).toEqual({ reopened: 1, status: 'running' });
    await expectKept('r-again');
    await succeed(store, 'r-again', 'a');
    await expectExpiringIn('r-again', 30);

    // A resume with nothing left to do leaves an ended run's expiry as it is.
    await client.pexpire(runKeys('r-again').meta, 5 * DAY);
    expect(await store.reopen('r-again', [])).toEqual({ reopened: 0, status: 'completed' });
    expect(await client.pttl(runKeys('r-again').meta)).toBeLessThanOrEqual(5 * DAY);
  });

  it('keeps held runs, and expires a held run once a resume completes it', async () => {
    const store = new RunStore(client, { retentionDays: 7 });
    await create(store, 'r-held', ['a', 'b']);
    await succeed(store, 'r-held', 'a');
    expect(await store.markBudgetExhausted('r-held', 0, 'budget reached')).toBe(true);
    await succeed(store, 'r-held', 'b');
    expect(await store.getRun('r-held')).toMatchObject({ status: 'budget_exhausted' });
    await expectKept('r-held');
    await store.setStatus('r-held', 'paused', 'quota');
    await expectKept('r-held');
    expect(await store.reopen('r-held', [])).toEqual({ reopened: 0, status: 'completed' });
    await expectExpiringIn('r-held', 7);
  });

  it('expires a cancelled run from its cancellation, with finishedAt set, and keeps it when it is resumed', async () => {
    const store = new RunStore(client, { retentionDays: 2 });
    await create(store, 'r-cancel', ['a', 'b']);
    await store.setStatus('r-cancel', 'cancelled', 'stopped by hand');
    const run = await store.getRun('r-cancel');
    expect(run).toMatchObject({ status: 'cancelled', statusReason: 'stopped by hand' });
    expect(run?.finishedAt).toBeGreaterThan(0);
    await expectExpiringIn('r-cancel', 2);
    expect(await store.reopen('r-cancel', [])).toEqual({ reopened: 0, status: 'running' });
    await expectKept('r-cancel');
  });

  it('keeps ended runs forever with a retention of 0, and creates nothing for a run that does not exist', async () => {
    const store = new RunStore(client, { retentionDays: 0 });
    await create(store, 'r-keep', ['a']);
    await succeed(store, 'r-keep', 'a');
    expect(await store.getRun('r-keep')).toMatchObject({ status: 'completed' });
    await expectKept('r-keep');

    await store.setStatus('r-none', 'cancelled');
    expect(await client.exists(runKeys('r-none').meta)).toBe(0);
    expect(() => new RunStore(client, { retentionDays: -1 })).toThrow(RangeError);
  });

  it('readers skip runs whose keys expired, drop them from the indexes and delete what was left of them', async () => {
    const tiny = new RunStore(client, { retentionDays: 50 / DAY }); // 50 ms
    const store = new RunStore(client);
    await create(store, 'r-1', ['a']);
    await create(tiny, 'r-2', ['a']);
    await create(store, 'r-3', ['a']);
    await succeed(tiny, 'r-2', 'a');
    // Until its keys expired (all given the same expiry in one step, so the meta stands for them).
    while ((await client.exists(runKeys('r-2').meta)) === 1) await new Promise((r) => setTimeout(r, 10));
    // A late write after the run expired re-creates one of its keys, without an expiry.
    await client.hincrby(runKeys('r-2').ledger, 'llm:calls', 1);

    expect((await store.listRuns(2)).map((r) => r.id)).toEqual(['r-3', 'r-1']);
    expect(await client.zrange(runIndexKeys.all, 0, -1)).toEqual(['r-1', 'r-3']);
    expect(await client.exists(...runKeyList('r-2'))).toBe(0);

    expect(await store.latestRunForSource('csv:r-2')).toBeUndefined();
    expect(await client.hexists(runIndexKeys.bySource, 'csv:r-2')).toBe(0);
    expect(await store.runsOfSource('csv:r-2')).toEqual([]);
    expect(await client.exists(runIndexKeys.ofSource('csv:r-2'))).toBe(0);
    expect(await store.resultsOfSource('csv:r-1', ['a'])).toEqual(new Map());
  });

  it('listRuns fills its page past runs that are gone', async () => {
    const store = new RunStore(client);
    for (const id of ['p-1', 'p-2', 'p-3', 'p-4', 'p-5']) await create(store, id, ['a']);
    // One DEL per run: the keys of one run share a slot, those of different runs do not.
    for (const id of ['p-5', 'p-4', 'p-2']) await client.del(...runKeyList(id));
    expect((await store.listRuns(2)).map((r) => r.id)).toEqual(['p-3', 'p-1']);
    expect(await client.zcard(runIndexKeys.all)).toBe(2);
  });
});
