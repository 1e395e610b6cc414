import { describe, expect, it } from 'vitest';
import { MemoryLimiterStore } from './memory-store.js';
import { resolveLimits } from './limits.js';
import { describeStoreBehaviour } from './test-store-behaviour.js';

describeStoreBehaviour('memory store', () => new MemoryLimiterStore());

describe('memory store with a fake clock', () => {
  it('refills continuously from the burst, never above it', async () => {
    let now = 1_000_000;
    const store = new MemoryLimiterStore({ now: () => now });
    // No pacing: the bucket as configured (pacing would cap it at one request per second).
    const limits = resolveLimits('clock', { rpm: 60, burst: 2, windowMs: 60_000, safetyMarginMs: 0, paceMs: 0 });
    const take = (slotMs = 0) => store.acquire('clock', limits, { id: String(now) + Math.random(), tokens: 0, priority: 'default', waitedMs: 0, slotMs, jitter: 0 });
    expect((await take()).kind).toBe('admitted');
    expect((await take()).kind).toBe('admitted');
    expect(await take()).toEqual({ kind: 'wait', waitMs: 1000, reason: 'requests', slotMs: 1_001_000 });
    now += 500;
    // The holder of that slot is told the rest of its wait; a newcomer queues one launch behind it.
    expect(await take(1_001_000)).toEqual({ kind: 'wait', waitMs: 500, reason: 'requests', slotMs: 1_001_000 });
    expect(await take()).toEqual({ kind: 'wait', waitMs: 1500, reason: 'requests', slotMs: 1_002_000 });
    now += 500;
    expect((await take()).kind).toBe('admitted');
    now += 3_600_000;
    expect((await take()).kind).toBe('admitted');
    expect((await take()).kind).toBe('admitted');
    expect((await take()).kind).toBe('wait');
  });
});
