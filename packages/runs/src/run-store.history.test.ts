import { describe, expect, it } from 'vitest';
import type { BrandJobData } from '@brandq/queue';
import { runKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { RunStore } from './run-store.js';
import type { RunHistoryEntry, RunStatus } from './run-types.js';

const redis = useTestRedis();
const DAY = 86_400_000;

const source = { type: 'csv' as const, path: '/tmp/history.csv' };
const brand = (runId: string, key: string): BrandJobData => ({ runId, key, name: key.toUpperCase(), rowNumber: 2, hints: {}, source });

async function newRun(store: RunStore, id: string, keys: string[]): Promise<void> {
  const written = await store.createOrExtendRun({ id, source, sourceKey: `csv:${id}`, brands: keys.map((k) => brand(id, k)), skipped: [] });
  expect(written.kind).toBe('written');
}

const entry = (action: RunHistoryEntry['action'], by: string, details: Record<string, unknown> = {}): RunHistoryEntry => ({ at: new Date().toISOString(), action, by, details });

describe('RunStore: a run keeps the history of what operators did to it', () => {
  it('gives the latest entries back, newest first, each as written', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'hist-order', ['a']);
    const pause = entry('pause', 'ops');
    const budget = entry('budget', 'anonymous', { budgetMicros: 2_000_000, previousBudgetMicros: 1_000_000 });
    expect(await store.appendHistory('hist-order', pause)).toBe(true);
    expect(await store.appendHistory('hist-order', budget)).toBe(true);
    expect(await store.history('hist-order')).toEqual([budget, pause]);
    expect(await store.history('hist-order', 1)).toEqual([budget]);
    await expect(store.history('hist-order', 0)).rejects.toThrow(RangeError);
  });

  it('keeps the newest 1,000 entries of a run pressed over and over', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'hist-cap', ['a']);
    for (let i = 0; i < 1005; i++) await store.appendHistory('hist-cap', entry('pause', `user-${i}`));
    const kept = await store.history('hist-cap', 2000);
    expect(kept).toHaveLength(1000);
    expect(kept[0]?.by).toBe('user-1004');
    expect(kept.at(-1)?.by).toBe('user-5');
  });

  it('writes no history for a run that does not exist', async () => {
    const store = new RunStore(redis.client());
    expect(await store.appendHistory('hist-none', entry('cancel', 'ops'))).toBe(false);
    expect(await redis.client().exists(runKeys('hist-none').history)).toBe(0);
    expect(await store.history('hist-none')).toEqual([]);
  });

  it('lives as long as the run: an entry written after the run ended expires with it, and a resume keeps it for good', async () => {
    const client = redis.client();
    const store = new RunStore(client, { retentionDays: 7 });
    await newRun(store, 'hist-retained', ['a', 'b']);
    await store.setStatus('hist-retained', 'cancelled', 'by hand');
    await store.appendHistory('hist-retained', entry('cancel', 'ops'));
    const [metaTtl, historyTtl] = await Promise.all([client.pttl(runKeys('hist-retained').meta), client.pttl(runKeys('hist-retained').history)]);
    expect(historyTtl).toBeGreaterThan(7 * DAY - 60_000);
    expect(Math.abs(historyTtl - metaTtl)).toBeLessThan(1000);

    await store.reopen('hist-retained', []);
    expect(await client.pttl(runKeys('hist-retained').history)).toBe(-1);
  });
});

describe('RunStore: a control changes the status only from the one it saw', () => {
  it('writes the status while the run is in one of the given ones, with the retention of setStatus', async () => {
    const client = redis.client();
    const store = new RunStore(client, { retentionDays: 7 });
    await newRun(store, 'trans-ok', ['a', 'b']);
    expect(await store.transitionStatus('trans-ok', ['running'], 'paused', 'paused by ops')).toBe(true);
    expect(await store.getRun('trans-ok')).toMatchObject({ status: 'paused', statusReason: 'paused by ops' });
    expect(await store.transitionStatus('trans-ok', ['running', 'paused', 'budget_exhausted'], 'cancelled')).toBe(true);
    const run = await store.getRun('trans-ok');
    expect(run?.status).toBe('cancelled');
    expect(run?.finishedAt).toBeGreaterThan(0);
    expect(await client.pttl(runKeys('trans-ok').meta)).toBeGreaterThan(7 * DAY - 60_000);
  });

  it('leaves a run that moved on meanwhile as it is, and a missing run missing', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'trans-moved', ['a']);
    await store.recordSuccess({ runId: 'trans-moved', key: 'a', brand: 'A', rowNumber: 2, processedAt: 'now', fields: {} });
    const before = await store.getRun('trans-moved');
    expect(before?.status).toBe('completed');
    for (const to of ['paused', 'cancelled'] satisfies RunStatus[]) expect(await store.transitionStatus('trans-moved', ['running'], to)).toBe(false);
    expect(await store.getRun('trans-moved')).toEqual(before);
    expect(await store.transitionStatus('trans-none', ['running'], 'paused')).toBe(false);
    expect(await store.getRun('trans-none')).toBeUndefined();
  });
});
