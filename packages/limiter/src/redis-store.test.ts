import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { scanKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { resolveLimits } from './limits.js';
import { RedisLimiterStore } from './redis-store.js';
import { describeStoreBehaviour } from './test-store-behaviour.js';

const redis = useTestRedis();
let shared: Redis | undefined;
const client = () => (shared ??= redis.client());

describeStoreBehaviour('redis store', () => new RedisLimiterStore(client()));

describe('redis store specifics', () => {
  it('decides atomically: 60 concurrent acquires from two clients admit exactly the burst', async () => {
    const stores = [new RedisLimiterStore(redis.client()), new RedisLimiterStore(redis.client())];
    // 600 rpm paces at 10 per 1 s slice; 100,000 tpm leaves a slice of tolerance for all ten.
    const limits = resolveLimits('atomic', { rpm: 600, burst: 10, tpm: 100_000, maxConcurrency: 50, windowMs: 60_000 });
    const decisions = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        stores[i % 2]!.acquire('atomic', limits, { id: randomUUID(), tokens: 100, priority: 'default', waitedMs: 0, slotMs: 0, jitter: 0 }),
      ),
    );
    expect(decisions.filter((d) => d.kind === 'admitted')).toHaveLength(10);
    const stats = await stores[0]!.stats('atomic');
    expect(stats).toMatchObject({ calls: 10, tokensInWindow: 1000, activeLeases: 10, requestsInWindow: 10 });
    expect(stats.deferrals.requests).toBe(50);
  });

  it('keeps every key of a provider under one hash tag and cleans up expired state', async () => {
    const store = new RedisLimiterStore(client());
    const limits = resolveLimits('tagged', { rpm: 100, burst: 5, tpm: 1000, maxConcurrency: 2, staggerMs: 50, windowMs: 200, safetyMarginMs: 0 });
    const id = randomUUID();
    await store.acquire('tagged', limits, { id, tokens: 10, priority: 'default', waitedMs: 0, slotMs: 0, jitter: 0 });
    await store.cooldown('tagged', { retryAfterMs: 100 });
    await store.syncHeaders('tagged', limits, { remainingTokens: 1, resetTokensMs: 100 });
    // SCAN on every master: KEYS on a Cluster connection would ask one random node.
    const keys: string[] = [];
    for await (const key of scanKeys(client(), '*tagged*')) keys.push(key);
    expect(keys.length).toBeGreaterThanOrEqual(8);
    for (const key of keys) expect(key).toMatch(/^brandq:\{limiter:tagged\}:/);

    await store.settle('tagged', limits, { id, usedTokens: 5, holdMs: 3 });
    await new Promise((r) => setTimeout(r, 350));
    // An admission after everything expired trims the window to nothing and leaves no stale sum.
    await store.acquire('tagged', limits, { id: randomUUID(), tokens: 0, priority: 'default', waitedMs: 0, slotMs: 0, jitter: 0 });
    expect(await client().exists('brandq:{limiter:tagged}:window', 'brandq:{limiter:tagged}:window-sum', 'brandq:{limiter:tagged}:window-tokens')).toBe(0);
  });

  it('reports a script error as is, not as Redis being down', async () => {
    const store = new RedisLimiterStore(client());
    await client().set('brandq:{limiter:broken}:leases', 'not a zset');
    const limits = resolveLimits('broken', { rpm: 10, burst: 1, maxConcurrency: 1 });
    await expect(store.acquire('broken', limits, { id: 'x', tokens: 0, priority: 'default', waitedMs: 0, slotMs: 0, jitter: 0 })).rejects.toThrow(/WRONGTYPE/);
  });
});
