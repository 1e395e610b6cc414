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

  it('forgets entries after their TTL', async () => {
    const client = redis.client();
    const cache = new ResultCache(client, { ttlSeconds: 1 });
    await cache.getOrCompute('search', 'short', async () => 1);
    expect(await client.pttl('brandq:cache:{search:short}:value')).toBeLessThanOrEqual(1000);
  });
});
