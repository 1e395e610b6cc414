import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { createLimiter } from './limiter.js';
import { FakeProvider } from './test-support/fake-provider.js';
import type { ProviderLimits } from './types.js';

const redis = useTestRedis();
const entry = (name: string) => fileURLToPath(new URL(`./test-support/${name}.ts`, import.meta.url));
const spawned: SpawnedProcess[] = [];
afterAll(() => spawned.forEach((p) => p.kill('SIGKILL')));

async function waitForOutput(proc: SpawnedProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!pattern.test(proc.output())) {
    if (performance.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${proc.output().slice(-4000)}`);
    if (proc.child.exitCode !== null) throw new Error(`process exited early:\n${proc.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('across real OS processes', () => {
  it('4 worker processes sharing one Redis limiter never exceed a strict provider\'s sliding-window limits', async () => {
    // One "minute" is 2 s here. The provider allows 20 requests, 3000 tokens and 3 in flight per window.
    const windowMs = 2000;
    const fake = new FakeProvider({ rpm: 20, windowMs, tpm: 3000, maxConcurrency: 3, latencyMs: 120 });
    const target = await fake.start();
    const limits: ProviderLimits = { rpm: 20, burst: 5, tpm: 3000, tpmHeadroom: 0.1, maxConcurrency: 3, windowMs, leaseMs: 5000, safetyMarginMs: 300 };
    const env = { REDIS_URL: redis.url, PROVIDER: 'mp', LIMITS: JSON.stringify(limits), TARGET: target, CALLS: '12', PARALLEL: '3', RESERVE_TOKENS: '150' };
    const procs = Array.from({ length: 4 }, () => spawnTs(entry('limited-caller'), [], env));
    spawned.push(...procs);
    try {
      const codes = await Promise.all(procs.map((p) => waitForExit(p, 45_000)));
      expect(codes, procs.map((p) => p.output()).join('\n')).toEqual([0, 0, 0, 0]);
    } finally {
      await fake.stop();
    }
    const results = procs.map((p) => JSON.parse(/RESULT (.*)/.exec(p.output())?.[1] ?? '{}') as { ok: number; limited: number });
    expect(results.reduce((s, r) => s + r.ok, 0)).toBe(48);
    expect(results.reduce((s, r) => s + r.limited, 0)).toBe(0);
    expect(fake.rejected).toEqual([]);
    expect(new Set(fake.ledger.map((e) => e.caller)).size).toBe(4);

    const worst = fake.worstWindow();
    expect(worst.requests).toBeLessThanOrEqual(20);
    expect(worst.tokens).toBeLessThanOrEqual(3000);
    // The fleet used the limit, not a trickle of it.
    expect(worst.requests).toBeGreaterThanOrEqual(15);

    const stats = await createLimiter({ redis: redis.client(), providers: { mp: limits } }).stats('mp');
    expect(stats.calls).toBe(48);
    expect(stats.settled).toBe(48);
    expect(stats.activeLeases).toBe(0);
    expect(stats.deferrals.requests).toBeGreaterThan(0);
  });

  it('negative control: the same 4 processes with per-process limiters (the original design) get 429s', async () => {
    const windowMs = 2000;
    const fake = new FakeProvider({ rpm: 20, windowMs, tpm: 1_000_000, maxConcurrency: 100, latencyMs: 20 });
    const target = await fake.start();
    const limits: ProviderLimits = { rpm: 20, burst: 5, windowMs };
    const env = { STORE: 'memory', REDIS_URL: redis.url, PROVIDER: 'mem', LIMITS: JSON.stringify(limits), TARGET: target, CALLS: '12', PARALLEL: '2', RESERVE_TOKENS: '0' };
    const procs = Array.from({ length: 4 }, () => spawnTs(entry('limited-caller'), [], env));
    spawned.push(...procs);
    try {
      await Promise.all(procs.map((p) => waitForExit(p, 45_000)));
    } finally {
      await fake.stop();
    }
    expect(fake.rejected.length).toBeGreaterThan(0);
    expect(fake.worstWindow().requests).toBeGreaterThan(20);
  });

  it('a holder killed with SIGKILL gives its leases back after leaseMs, and the waiting callers finish', async () => {
    const leaseMs = 1500;
    const limits: ProviderLimits = { rpm: 1000, burst: 100, maxConcurrency: 2, leaseMs };
    const holder = spawnTs(entry('lease-holder'), [], { REDIS_URL: redis.url, PROVIDER: 'crash', LIMITS: JSON.stringify(limits), HOLD: '2' });
    spawned.push(holder);
    await waitForOutput(holder, /HOLDING/, 30_000);

    const limiter = createLimiter({ redis: redis.client(), providers: { crash: limits } });
    let admitted = 0;
    const waiters = Array.from({ length: 3 }, async () => {
      const permit = await limiter.acquire('crash');
      admitted += 1;
      await new Promise((r) => setTimeout(r, 50));
      await permit.settle();
      return performance.now();
    });

    // Alive, the holder renews: its leases outlast leaseMs and nobody gets in.
    await new Promise((r) => setTimeout(r, leaseMs + 700));
    expect(admitted).toBe(0);
    expect((await limiter.stats('crash')).activeLeases).toBe(2);

    holder.kill('SIGKILL');
    await holder.exited;
    const killedAt = performance.now();
    const finished = await Promise.all(waiters);
    for (const t of finished) expect(t - killedAt).toBeLessThan(leaseMs + 2500);
    const stats = await limiter.stats('crash');
    expect(stats).toMatchObject({ leasesReclaimed: 2, activeLeases: 0, settled: 3 });
    expect(stats.deferrals.concurrency).toBeGreaterThanOrEqual(3);
  });
});
