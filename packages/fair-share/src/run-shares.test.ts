import { describe, expect, it } from 'vitest';
import { useTestRedis } from '@brandq/testing';
import { RunShares, etaSeconds, SHARE_BUCKET_MS } from './run-shares.js';

/** Each run's measured share of the fleet over the last minute, written by workers, read by status and the board. */

const redis = useTestRedis();

describe('measured shares', () => {
  it("gives each run its part of the fleet's admitted calls over the last minute, and the brands it finished", async () => {
    let now = 1_800_000_000_000;
    const shares = new RunShares(redis.client(), () => now);
    for (let i = 0; i < 30; i++) await shares.admitted('light');
    for (let i = 0; i < 90; i++) await shares.admitted('heavy');
    for (let i = 0; i < 12; i++) await shares.finished('heavy');
    now += 20_000;
    const measured = await shares.measure();
    expect(measured.calls).toBe(120);
    expect(measured.runs.get('light')).toEqual({ calls: 30, done: 0, share: 0.25 });
    expect(measured.runs.get('heavy')).toEqual({ calls: 90, done: 12, share: 0.75 });
  });

  it('leaves out what is older than a minute', async () => {
    let now = 1_900_000_000_000;
    const shares = new RunShares(redis.client(), () => now);
    await shares.admitted('old');
    now += 60_000 + SHARE_BUCKET_MS;
    await shares.admitted('new');
    const measured = await shares.measure();
    expect([...measured.runs.keys()]).toEqual(['new']);
    expect(measured.runs.get('new')?.share).toBe(1);
  });

  it('estimates the time left at the pace measured, and none when nothing finished', () => {
    expect(etaSeconds(100, { done: 30 }, 60_000)).toBe(200);
    expect(etaSeconds(100, { done: 0 }, 60_000)).toBeUndefined();
    expect(etaSeconds(100, undefined, 60_000)).toBeUndefined();
    expect(etaSeconds(0, undefined, 60_000)).toBe(0);
  });
});
