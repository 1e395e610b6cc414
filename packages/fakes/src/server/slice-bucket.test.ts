import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SliceBucket } from './slice-bucket.js';

const WINDOW_MS = 60_000;
const SLICE_MS = 1000;

/** One request against a bucket: admitted (and charged) when its wait is 0. */
function offer(bucket: SliceBucket, at: number, weight: number, limit: number, toleranceMs = SLICE_MS): boolean {
  const admitted = bucket.waitMs(at, limit, WINDOW_MS, toleranceMs) === 0;
  if (admitted) bucket.charge(at, weight, limit, WINDOW_MS);
  return admitted;
}

describe('SliceBucket: a per-minute limit enforced per slice', () => {
  it('admits one slice of burst, then refuses what the minute would still allow', () => {
    // 60,000 per minute is 1,000 per second: a second's worth at once, and one more.
    const bucket = new SliceBucket();
    const admitted = Array.from({ length: 1100 }, () => offer(bucket, 0, 1, 60_000)).filter(Boolean).length;
    expect(admitted).toBe(1001);
    // The wait names when the schedule is back inside one slice: one request's share later.
    expect(bucket.waitMs(0, 60_000, WINDOW_MS, SLICE_MS)).toBe(1);
  });

  it('admits a single request larger than a slice once the schedule has caught up, and makes the next wait for it', () => {
    const bucket = new SliceBucket();
    // 6,000 tokens/min is 100 per second; 500 tokens are five slices' share.
    expect(offer(bucket, 0, 500, 6000)).toBe(true);
    expect(bucket.waitMs(0, 6000, WINDOW_MS, SLICE_MS)).toBe(4000);
    expect(offer(bucket, 3999, 10, 6000)).toBe(false);
    expect(offer(bucket, 4000, 10, 6000)).toBe(true);
  });

  it('applies a changed limit at once: the same debt drains at the new rate', () => {
    const bucket = new SliceBucket();
    bucket.charge(0, 10, 60, WINDOW_MS);
    expect(bucket.waitMs(0, 60, WINDOW_MS, SLICE_MS)).toBe(9000);
    expect(bucket.waitMs(0, 6000, WINDOW_MS, SLICE_MS)).toBe(0);
  });

  it('never admits more than the rate allows over any interval, plus one slice and one request (property)', () => {
    const request = fc.record({ gapMs: fc.integer({ min: 0, max: 400 }), weight: fc.integer({ min: 1, max: 3000 }) });
    fc.assert(
      fc.property(
        fc.integer({ min: 60, max: 600_000 }),
        fc.constantFrom(0, 0.5, 1),
        fc.array(request, { minLength: 1, maxLength: 120 }),
        (limit, tolerance, requests) => {
          const bucket = new SliceBucket();
          const rate = limit / WINDOW_MS;
          const toleranceMs = SLICE_MS * tolerance;
          const admitted: Array<{ at: number; weight: number }> = [];
          let at = 0;
          for (const r of requests) {
            at += r.gapMs;
            if (offer(bucket, at, r.weight, limit, toleranceMs)) admitted.push({ at, weight: r.weight });
          }
          // GCRA's bound: what was admitted from i up to (not including) j fits the rate over [t_i, t_j] plus the tolerance.
          for (let i = 0; i < admitted.length; i++) {
            let sum = 0;
            for (let j = i + 1; j < admitted.length; j++) {
              sum += admitted[j - 1]?.weight ?? 0;
              const first = admitted[i];
              const last = admitted[j];
              if (first && last) expect(sum).toBeLessThanOrEqual(rate * (last.at - first.at + toleranceMs) + 1e-6);
            }
          }
        },
      ),
      { numRuns: 300, verbose: 1 },
    );
  });

  it('admits every request of a sequence paced at the rate, whatever the tolerance (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 60, max: 600_000 }),
        fc.constantFrom(0, 0.5, 1),
        fc.array(fc.record({ weight: fc.integer({ min: 1, max: 5000 }), slackMs: fc.integer({ min: 0, max: 50 }) }), { minLength: 1, maxLength: 120 }),
        (limit, tolerance, requests) => {
          const bucket = new SliceBucket();
          const msPerUnit = WINDOW_MS / limit;
          let at = 0;
          for (const r of requests) {
            expect(offer(bucket, Math.ceil(at), r.weight, limit, SLICE_MS * tolerance)).toBe(true);
            // The next request comes when this one's weight has drained at the rate (or later).
            at = Math.ceil(at) + r.weight * msPerUnit + r.slackMs;
          }
        },
      ),
      { numRuns: 300, verbose: 1 },
    );
  });
});
