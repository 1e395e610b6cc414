import { describe, expect, it } from 'vitest';
import { useTestRedis } from '@brandq/testing';
import { ResultCache, cacheKeyOf } from './result-cache.js';

const redis = useTestRedis();

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
});
