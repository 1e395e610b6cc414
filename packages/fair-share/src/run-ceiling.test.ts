import { describe, expect, it } from 'vitest';
import { useTestRedis } from '@brandq/testing';
import { RunCeiling } from './run-ceiling.js';

/** A run's own ceiling (`--max-rpm`), on Redis time, shared by every process of the fleet. */

const redis = useTestRedis();

describe("a run's own ceiling", () => {
  it('spaces the run\'s calls 60000/maxRpm ms apart, and says how long the next one waits', async () => {
    const ceiling = new RunCeiling(redis.client());
    expect(await ceiling.admit('capped', 'llm', 600)).toBe(0);
    const wait = await ceiling.admit('capped', 'llm', 600);
    // 600 per minute: one call every 100 ms.
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(100);
    await new Promise((r) => setTimeout(r, wait + 5));
    expect(await ceiling.admit('capped', 'llm', 600)).toBe(0);
  });

  it('keeps one ceiling per provider and per run', async () => {
    const ceiling = new RunCeiling(redis.client());
    expect(await ceiling.admit('per-provider', 'llm', 1)).toBe(0);
    expect(await ceiling.admit('per-provider', 'tavily', 1)).toBe(0);
    expect(await ceiling.admit('another-run', 'llm', 1)).toBe(0);
    expect(await ceiling.admit('per-provider', 'llm', 1)).toBeGreaterThan(59_000);
  });

  it('admits at most maxRpm calls in any minute, whatever the number of callers racing for them', async () => {
    const ceiling = new RunCeiling(redis.client());
    const clients = [redis.client(), redis.client(), redis.client()];
    const racers = clients.map((c) => new RunCeiling(c));
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => (racers[i % racers.length] as RunCeiling).admit('raced', 'llm', 5)));
    // 5 per minute, paced: of 60 calls at once, exactly one goes now, and each of the others
    // is told a slot of its own, 12 s apart: they come back one at a time, not as a herd.
    expect(answers.filter((w) => w === 0)).toHaveLength(1);
    const waits = answers.filter((w) => w > 0).sort((a, b) => a - b);
    expect(waits[0]).toBeGreaterThan(11_000);
    for (let i = 1; i < waits.length; i++) expect((waits[i] as number) - (waits[i - 1] as number)).toBeGreaterThanOrEqual(11_990);
    expect(await ceiling.admit('raced', 'llm', 5)).toBeGreaterThan(59 * 12_000);
  });

  it('forgets a ceiling that has nothing to hold: its key expires soon after the next slot', async () => {
    const client = redis.client();
    const ceiling = new RunCeiling(client);
    await ceiling.admit('forgotten', 'llm', 60_000);
    const keys = await client.keys('*forgotten*');
    expect(keys).toHaveLength(1);
    const ttl = await client.pttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1002);
  });
});
