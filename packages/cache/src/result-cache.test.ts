import { describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { TransientError } from '@brandq/errors';
import { cacheKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import type { ResultCacheObserver } from './cache-observer.js';
import { ResultCache, cacheKeyOf } from './result-cache.js';

const redis = useTestRedis();

/** An observer and a logger that remember what the cache told them. */
function recorder() {
  const seen = {
    lost: [] as Parameters<ResultCacheObserver['fillLockLost']>[],
    storeFailed: [] as Parameters<ResultCacheObserver['storeFailed']>[],
    storeFenced: [] as Parameters<ResultCacheObserver['storeFenced']>[],
    waitTimedOut: [] as Parameters<ResultCacheObserver['waitTimedOut']>[],
    warnings: [] as string[],
  };
  const observer: ResultCacheObserver = {
    fillLockLost: (...args) => void seen.lost.push(args),
    storeFailed: (...args) => void seen.storeFailed.push(args),
    storeFenced: (...args) => void seen.storeFenced.push(args),
    waitTimedOut: (...args) => void seen.waitTimedOut.push(args),
  };
  const logger = { warn: (_obj: object, msg: string) => void seen.warnings.push(msg) };
  return { seen, observer, logger };
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A compute that runs until the test releases it, counting its calls (each one a paid call). */
function heldCompute<T>(answer: T) {
  const held = { calls: 0, release: () => undefined as void, compute: async () => answer };
  const gate = new Promise<void>((r) => (held.release = r));
  held.compute = async () => {
    held.calls += 1;
    await gate;
    return answer;
  };
  return held;
}

/** Every master the client writes to: one, or each master of a cluster. */
function masters(client: Redis): Redis[] {
  return redis.cluster ? (client as unknown as Cluster).nodes('master') : [client];
}

/**
 * Fills every master as a production Redis fills up: `noeviction`, a small `maxmemory`
 * just above what it holds now, then appends to a key of its own until it answers OOM.
 */
async function fillUntilOom(client: Redis): Promise<void> {
  const chunk = 'x'.repeat(64 * 1024);
  for (const node of masters(client)) {
    const used = Number(/used_memory:(\d+)/.exec(await node.info('memory'))?.[1]);
    await node.config('SET', 'maxmemory-policy', 'noeviction');
    await node.config('SET', 'maxmemory', String(used + 1024 * 1024));
    // A key this master serves (a cluster node answers MOVED for the others).
    let filler: string | undefined;
    for (let i = 0; !filler; i++) {
      const key = cacheKeys('test-filler', String(i)).value;
      if (await node.set(key, '').then(() => true, (err: Error) => !/^MOVED/.test(err.message) && Promise.reject(err))) filler = key;
    }
    for (let appended = 0; ; appended++) {
      if (appended > 1000) throw new Error('Redis never reported OOM');
      const full = await node.append(filler, chunk).then(() => false, (err: Error) => /^OOM/.test(err.message) || Promise.reject(err));
      if (full) break;
    }
  }
}

/** Keeps the Redis it runs on busy for ARGV[1] ms (it then answers BUSY to other clients). */
const BUSY_SCRIPT = `
local function now() local t = redis.call('TIME') return t[1] * 1000 + t[2] / 1000 end
local stop = now() + tonumber(ARGV[1])
while now() < stop do end
return 1`;

async function unlimitMemory(client: Redis): Promise<void> {
  for (const node of masters(client)) await node.config('SET', 'maxmemory', '0');
  await redis.flush();
}

describe('ResultCache', () => {
  it('computes once, then answers from the cache', async () => {
    const cache = new ResultCache(redis.client(), { ttlSeconds: 60 });
    let calls = 0;
    const compute = async () => ({ n: ++calls });
    const key = cacheKeyOf({ query: 'acme', depth: 'basic' });
    expect(await cache.getOrCompute('search', key, compute)).toEqual({ value: { n: 1 }, hit: false });
    expect(await cache.getOrCompute('search', key, compute)).toEqual({ value: { n: 1 }, hit: true });
    expect(calls).toBe(1);
  });

  it('makes one call when many clients miss the same key at once', async () => {
    const caches = Array.from({ length: 6 }, () => new ResultCache(redis.client(), { ttlSeconds: 60 }));
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const compute = async () => {
      calls++;
      await gate;
      return 'answer';
    };
    const pending = caches.map((c) => c.getOrCompute('llm', 'same-key', compute));
    await new Promise((r) => setTimeout(r, 100));
    release();
    const outcomes = await Promise.all(pending);
    expect(calls).toBe(1);
    expect(outcomes.filter((o) => !o.hit)).toHaveLength(1);
    expect(outcomes.every((o) => o.value === 'answer')).toBe(true);
  });

  it('lets another client fill the key when the first filler fails', async () => {
    const a = new ResultCache(redis.client(), { ttlSeconds: 60 });
    const b = new ResultCache(redis.client(), { ttlSeconds: 60 });
    await expect(a.getOrCompute('llm', 'flaky', async () => Promise.reject(new Error('HTTP 500')))).rejects.toThrow('HTTP 500');
    expect(await b.getOrCompute('llm', 'flaky', async () => 'second try')).toEqual({ value: 'second try', hit: false });
  });

  it('keeps the fill lock while a slow filler is alive, and frees it soon after a filler dies', async () => {
    const client = redis.client();
    const slow = new ResultCache(client, { ttlSeconds: 60, fillLockMs: 300 });
    let release!: () => void;
    const pending = slow.getOrCompute('llm', 'slow', () => new Promise<string>((r) => (release = () => r('slow answer'))));
    await new Promise((r) => setTimeout(r, 700));
    // Still held after twice its length: renewed, so nobody else paid for the same key.
    expect(await client.exists('brandq:cache:{llm:slow}:lock')).toBe(1);
    release();
    expect(await pending).toEqual({ value: 'slow answer', hit: false });

    // A dead filler (a lock nobody renews) blocks others only for the lock's length.
    await client.set('brandq:cache:{llm:orphan}:lock', 'dead-worker', 'PX', 300);
    const other = new ResultCache(redis.client(), { ttlSeconds: 60, fillLockMs: 300 });
    expect(await other.getOrCompute('llm', 'orphan', async () => 'taken over')).toEqual({ value: 'taken over', hit: false });
  });

  it('forgets entries after their TTL', async () => {
    const client = redis.client();
    const cache = new ResultCache(client, { ttlSeconds: 1 });
    await cache.getOrCompute('search', 'short', async () => 1);
    expect(await client.pttl('brandq:cache:{search:short}:value')).toBeLessThanOrEqual(1000);
  });

  describe('a filler that lost its lock', () => {
    it('stops renewing a lock another filler took, and does not overwrite that filler\'s claim', async () => {
      const client = redis.client();
      const keys = cacheKeys('llm', 'taken');
      const { seen, observer } = recorder();
      const cache = new ResultCache(client, { ttlSeconds: 60, fillLockMs: 300, observer });
      const held = heldCompute('first answer');
      const pending = cache.getOrCompute('llm', 'taken', held.compute);
      await until(async () => (await client.get(keys.lock)) !== null);
      // A newer filler's claim, as after this filler's lock had lapsed and a waiter took the key.
      await client.set(keys.lock, 'newer-filler', 'PX', 5000);
      await until(() => seen.lost.length > 0);
      expect(seen.lost).toEqual([['llm', 'taken']]);
      held.release();
      // The paid answer still reaches its caller...
      expect(await pending).toEqual({ value: 'first answer', hit: false });
      // ...but the key stays the newer filler's to fill: no value written over it, its lock kept.
      expect(await client.get(keys.value)).toBeNull();
      expect(await client.get(keys.lock)).toBe('newer-filler');
      expect(seen.storeFenced).toEqual([['llm']]);
      expect(cache.stats).toMatchObject({ fillLocksLost: 1, fencedStores: 1, storeFailures: 0 });
    });

    it('never overwrites a value a newer filler already stored', async () => {
      const client = redis.client();
      const keys = cacheKeys('llm', 'stored-meanwhile');
      const cache = new ResultCache(client, { ttlSeconds: 60, fillLockMs: 300 });
      const held = heldCompute('late answer');
      const pending = cache.getOrCompute('llm', 'stored-meanwhile', held.compute);
      await until(async () => (await client.get(keys.lock)) !== null);
      await client.multi().del(keys.lock).set(keys.value, JSON.stringify('newer answer'), 'EX', 60).exec();
      held.release();
      expect(await pending).toEqual({ value: 'late answer', hit: false });
      expect(await client.get(keys.value)).toBe(JSON.stringify('newer answer'));
    });

    it('keeps its lock through a Redis blip shorter than the lock\'s remaining life, so a waiter pays nothing', async () => {
      const client = redis.client();
      const keys = cacheKeys('llm', 'blip');
      const { seen, observer } = recorder();
      const holder = new ResultCache(client, { ttlSeconds: 60, fillLockMs: 1500, observer });
      const held = heldCompute('only answer');
      const pending = holder.getOrCompute('llm', 'blip', held.compute);
      const admin = redis.client();
      await until(async () => (await admin.get(keys.lock)) !== null);
      const claimedAt = Date.now();
      for (const node of masters(admin)) await node.config('SET', 'busy-reply-threshold', '50');
      try {
        await new Promise((r) => setTimeout(r, 400));
        // A script busy for 700 ms on the lock's master: it answers BUSY to everything else,
        // the holder's renewal due at 500 ms included, until about 1100 ms (the lock runs to 1500 ms).
        await admin.eval(BUSY_SCRIPT, 1, keys.lock, '700');
        expect(Date.now() - claimedAt).toBeLessThan(1400);
        await until(async () => (await admin.pttl(keys.lock)) > 1000, 1000);
      } finally {
        for (const node of masters(admin)) await node.config('SET', 'busy-reply-threshold', '5000');
      }
      expect(seen.lost).toEqual([]);
      const waiter = heldCompute('second answer');
      waiter.release();
      const waiting = new ResultCache(redis.client(), { ttlSeconds: 60, fillLockMs: 1500 }).getOrCompute('llm', 'blip', waiter.compute);
      held.release();
      expect(await pending).toEqual({ value: 'only answer', hit: false });
      expect(await waiting).toEqual({ value: 'only answer', hit: true });
      expect(waiter.calls).toBe(0);
    });

    it('gives up its lock when it cannot renew it for the lock\'s whole life, and still returns what it paid for', async () => {
      const cut = redis.client();
      const keys = cacheKeys('llm', 'cut-off');
      const { seen, observer, logger } = recorder();
      const holder = new ResultCache(cut, { ttlSeconds: 60, fillLockMs: 300, observer, logger });
      const first = heldCompute('first answer');
      const pending = holder.getOrCompute('llm', 'cut-off', first.compute);
      const other = redis.client();
      await until(async () => (await other.get(keys.lock)) !== null);
      // The holder's Redis connection is gone: every renewal (and later the store) fails.
      cut.disconnect();
      await until(() => seen.lost.length > 0, 2000);
      expect(seen.lost).toEqual([['llm', 'renewal_failed']]);
      // The lock lapsed in Redis as well: another worker fills the key.
      const second = heldCompute('second answer');
      second.release();
      expect(await new ResultCache(other, { ttlSeconds: 60, fillLockMs: 300 }).getOrCompute('llm', 'cut-off', second.compute)).toEqual({
        value: 'second answer',
        hit: false,
      });
      first.release();
      expect(await pending).toEqual({ value: 'first answer', hit: false });
      expect(seen.storeFailed).toEqual([['llm', 'unavailable']]);
      expect(seen.warnings.length).toBeGreaterThanOrEqual(2);
      expect(await other.get(keys.value)).toBe(JSON.stringify('second answer'));
    });
  });

  describe('a waiter', () => {
    it('gives up with a TransientError at its deadline while another filler is still at work, paying nothing', { timeout: 5000 }, async () => {
      const client = redis.client();
      // A live filler: its lock is renewed far past the waiter's deadline.
      await client.set(cacheKeys('llm', 'busy').lock, 'live-filler', 'PX', 60_000);
      const { seen, observer } = recorder();
      const waiter = new ResultCache(client, { ttlSeconds: 60, fillLockMs: 300, waitTimeoutMs: 400, observer });
      const held = heldCompute('never');
      held.release();
      const started = Date.now();
      const error: unknown = await waiter.getOrCompute('llm', 'busy', held.compute).catch((err: unknown) => err);
      const waited = Date.now() - started;
      expect(error).toBeInstanceOf(TransientError);
      expect(waited).toBeGreaterThanOrEqual(400);
      expect(waited).toBeLessThan(900);
      expect(held.calls).toBe(0);
      expect(seen.waitTimedOut).toEqual([['llm']]);
    });

    it('stops waiting as soon as its job is aborted', { timeout: 5000 }, async () => {
      const client = redis.client();
      await client.set(cacheKeys('llm', 'aborted').lock, 'live-filler', 'PX', 60_000);
      const waiter = new ResultCache(client, { ttlSeconds: 60, fillLockMs: 300, waitTimeoutMs: 30_000 });
      const controller = new AbortController();
      const held = heldCompute('never');
      const pending = waiter.getOrCompute('llm', 'aborted', held.compute, controller.signal).catch((err: unknown) => err);
      // Long enough for the waiter's backoff to reach a long sleep.
      await new Promise((r) => setTimeout(r, 1000));
      const reason = new Error('job stopped');
      const abortedAt = Date.now();
      controller.abort(reason);
      expect(await pending).toBe(reason);
      expect(Date.now() - abortedAt).toBeLessThan(150);
      expect(held.calls).toBe(0);
    });
  });

  describe('a full Redis (maxmemory, noeviction)', () => {
    it('still returns the paid answer it cannot store, paying once, and refuses new fills with a TransientError', async () => {
      const client = redis.client();
      const { seen, observer, logger } = recorder();
      const cache = new ResultCache(client, { ttlSeconds: 60, observer, logger });
      let calls = 0;
      try {
        const outcome = await cache.getOrCompute('llm', 'full', async () => {
          calls += 1;
          // Redis fills up while the provider call is in flight.
          await fillUntilOom(client);
          return { facts: 'paid for' };
        });
        expect(outcome).toEqual({ value: { facts: 'paid for' }, hit: false });
        expect(calls).toBe(1);
        expect(seen.storeFailed).toEqual([['llm', 'oom']]);
        expect(seen.warnings).toHaveLength(1);
        expect(cache.stats.storeFailures).toBe(1);
        // Nothing new is paid for while Redis is full: a fill cannot be claimed, the job retries later.
        const refused: unknown = await cache.getOrCompute('llm', 'another', async () => ++calls).catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(TransientError);
        expect(calls).toBe(1);
      } finally {
        await unlimitMemory(client);
      }
    });
  });
});
