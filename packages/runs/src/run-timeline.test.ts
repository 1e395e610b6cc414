import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeferralReason } from '@brandq/limiter';
import type { BrandJobData } from '@brandq/queue';
import { runKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { RunStore, type RunWritten } from './run-store.js';
import { RunTimeline, projectSpendMicros, type RunTimelineData, type TimelineCounts, type TimelineIncrement, type TimelinePoint } from './run-timeline.js';

const redis = useTestRedis();

const source = { type: 'csv' as const, path: '/tmp/timeline.csv' };
const brand = (runId: string, key: string, rowNumber: number): BrandJobData => ({ runId, key, name: key.toUpperCase(), rowNumber, hints: {}, source });

async function newRun(store: RunStore, id: string, n: number): Promise<RunWritten> {
  const answer = await store.createOrExtendRun({ id, source, sourceKey: `csv:/tmp/${id}.csv`, brands: Array.from({ length: n }, (_, i) => brand(id, `b${i}`, i + 2)), skipped: [] });
  if (answer.kind !== 'written') throw new Error(`run not written: ${JSON.stringify(answer)}`);
  return answer;
}

// ---------------------------------------------------------------------------------------
// The model: the timeline as a plain function of every increment recorded and its time.
// A bucket is `width` wide, the smallest 10 s x 2^k that fits the latest time in 256 buckets;
// an increment counts in bucket floor(max(0, t - start) / width), start being the first time.

const MAX_POINTS = 256;
const FIRST_WIDTH_MS = 10_000;
const REASONS: readonly DeferralReason[] = ['requests', 'tokens', 'concurrency', 'stagger', 'cooldown'];

interface Recorded {
  atMs: number;
  increment: TimelineIncrement;
}

const zero = (): TimelineCounts => ({ done: 0, failed: 0, spentMicros: 0, rateLimited: 0, waits: { requests: 0, tokens: 0, concurrency: 0, stagger: 0, cooldown: 0 } });

function add(into: TimelineCounts, increment: TimelineIncrement): void {
  into.done += increment.done ?? 0;
  into.failed += increment.failed ?? 0;
  into.spentMicros += increment.spentMicros ?? 0;
  into.rateLimited += increment.rateLimited ?? 0;
  for (const reason of REASONS) into.waits[reason] += increment.waits?.[reason] ?? 0;
}

const isEmpty = (increment: TimelineIncrement) => {
  const sum = zero();
  add(sum, increment);
  return sum.done === 0 && sum.failed === 0 && sum.spentMicros === 0 && sum.rateLimited === 0 && REASONS.every((r) => sum.waits[r] === 0);
};

/** Where the model puts records: the first time counted, and the bucket width (0, 0 before any). */
function modelLayout(recorded: readonly Recorded[]): { startMs: number; bucketMs: number } {
  const first = recorded.find((r) => !isEmpty(r.increment));
  if (!first) return { startMs: 0, bucketMs: 0 };
  let latest = 0;
  for (const r of recorded) if (!isEmpty(r.increment)) latest = Math.max(latest, r.atMs - first.atMs);
  let bucketMs = FIRST_WIDTH_MS;
  while (Math.floor(latest / bucketMs) >= MAX_POINTS) bucketMs *= 2;
  return { startMs: first.atMs, bucketMs };
}

function modelTimeline(recorded: readonly Recorded[]): RunTimelineData {
  const { startMs, bucketMs } = modelLayout(recorded);
  const buckets: TimelineCounts[] = [];
  for (const r of recorded) {
    if (isEmpty(r.increment)) continue;
    const index = Math.floor(Math.max(0, r.atMs - startMs) / bucketMs);
    while (buckets.length <= index) buckets.push(zero());
    add(buckets[index] as TimelineCounts, r.increment);
  }
  let spent = 0;
  const points = buckets.map((b, i): TimelinePoint => {
    spent += b.spentMicros;
    return { t: startMs + i * bucketMs, ...b, spentMicros: spent };
  });
  return { bucketMs, startMs, points };
}

/**
 * Compared as text (a deep equality of 256 points at every step, and its diff while
 * shrinking, are slow); a difference is shown as the first point that differs.
 */
function expectSameTimeline(real: RunTimelineData, expected: RunTimelineData): void {
  if (JSON.stringify(real) === JSON.stringify(expected)) return;
  const at = real.points.findIndex((p, i) => JSON.stringify(p) !== JSON.stringify(expected.points[i]));
  const shown = (t: RunTimelineData) => ({ bucketMs: t.bucketMs, startMs: t.startMs, points: t.points.length, firstDifferent: at, point: t.points[at] });
  expect(shown(real)).toEqual(shown(expected));
}

/** Sums of the points' counters (spend: the last cumulative value). */
function totalsOf(points: readonly TimelinePoint[]): TimelineCounts {
  const sum = zero();
  for (const p of points) add(sum, { ...p, spentMicros: 0 });
  sum.spentMicros = points.at(-1)?.spentMicros ?? 0;
  return sum;
}

// ---------------------------------------------------------------------------------------
// Random sequences of records of every counter (0 too), each at the clock moved by some
// amount: forward from a few ms to a year, or back (a failover to a server whose clock is behind).

/** A record at the clock moved by `advanceMs`. */
interface Step {
  advanceMs: number;
  increment: TimelineIncrement;
}

const amount = fc.oneof(
  { arbitrary: fc.constant(0), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: 5 }), weight: 3 },
  { arbitrary: fc.integer({ min: 1, max: 2 ** 40 }), weight: 1 },
);
const increment: fc.Arbitrary<TimelineIncrement> = fc.record({
  done: amount,
  failed: amount,
  spentMicros: amount,
  rateLimited: amount,
  waits: fc.record({ requests: amount, tokens: amount, concurrency: amount, stagger: amount, cooldown: amount }, { requiredKeys: [] }),
});
// Mostly a run's pace (a new bucket every step or two, so a sequence fills 256 buckets of
// several counters and merges them, with the hash past its compact encoding), sometimes a
// long pause or a jump of up to a year, or the clock going back.
const advance = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 2_000 }), weight: 40 },
  { arbitrary: fc.integer({ min: 2_000, max: 30_000 }), weight: 150 },
  { arbitrary: fc.integer({ min: 30_000, max: 3_600_000 }), weight: 4 },
  { arbitrary: fc.integer({ min: 3_600_000, max: 365 * 86_400_000 }), weight: 1 },
  { arbitrary: fc.integer({ min: -3_600_000, max: -1 }), weight: 5 },
);
const steps = fc.array(fc.record({ advanceMs: advance, increment }), { maxLength: 400, size: 'max' });

describe('RunTimeline against its model', () => {
  it('buckets every increment as the model does, in at most 256 points, and keeps every total exactly', async () => {
    const client = redis.client();
    const store = new RunStore(client);
    const timeline = new RunTimeline(client);
    let sequence = 0;
    await fc.assert(
      fc.asyncProperty(steps, fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }), async (sequenceSteps: Step[], startMs) => {
        sequence += 1;
        const runId = `timeline-model-${sequence}`;
        await newRun(store, runId, 1);
        let clock = startMs;
        const recorded: Recorded[] = [];
        const total = zero();
        const check = async () => {
          const real = await timeline.read(runId);
          expectSameTimeline(real, modelTimeline(recorded));
          expect(real.points.length).toBeLessThanOrEqual(MAX_POINTS);
          expect(totalsOf(real.points)).toEqual(total);
        };
        for (const [i, step] of sequenceSteps.entries()) {
          clock += step.advanceMs;
          const next: Recorded = { atMs: clock, increment: step.increment };
          // The whole timeline before and after every merge (the model's width changes), after
          // every 16th record and the last: in between only plain increments happen, and one
          // in a wrong bucket stays there until the next merge.
          const merges = modelLayout([...recorded, next]).bucketMs !== modelLayout(recorded).bucketMs;
          if (merges) await check();
          await timeline.record(runId, step.increment, clock);
          recorded.push(next);
          add(total, step.increment);
          if (merges || i % 16 === 15 || i === sequenceSteps.length - 1) await check();
        }
      }),
      // A failure found is shrunk for at most a minute, then reported with its seed and counterexample.
      { numRuns: 100, verbose: fc.VerbosityLevel.Verbose, interruptAfterTimeLimit: 60_000 },
    );
  }, 120_000);
});

describe('RunTimeline', () => {
  it('counts a brand done or failed with its outcome, once, as the run counts it', async () => {
    const client = redis.client();
    const store = new RunStore(client);
    const timeline = new RunTimeline(client);
    await newRun(store, 'timeline-outcomes', 3);
    const fields = { website: null };
    const ok = (key: string) => ({ runId: 'timeline-outcomes', key, brand: key, rowNumber: 2, processedAt: 'now', fields });
    const failure = (key: string) => ({ runId: 'timeline-outcomes', key, brand: key, rowNumber: 3, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' });
    await store.recordSuccess(ok('b0'));
    // A duplicate delivery after a crash is no second brand.
    await store.recordSuccess(ok('b0'));
    await store.recordFailure(failure('b1'));
    // Recorded again by BullMQ's own failure path: still one failure.
    await store.recordFailure(failure('b1'));
    // A late failure of a brand that succeeded is ignored by the run, and here.
    await store.recordFailure(failure('b0'));
    // The failed brand retried with success.
    await store.recordSuccess(ok('b1'));
    const { points } = await timeline.read('timeline-outcomes');
    expect(totalsOf(points)).toMatchObject({ done: 2, failed: 1 });
    expect((await store.getRun('timeline-outcomes'))?.succeeded).toBe(2);
  });

  it('writes nothing for a run that does not exist (a pruned run is not brought back)', async () => {
    const client = redis.client();
    await new RunTimeline(client).record('timeline-no-such-run', { spentMicros: 5, waits: { tokens: 1 } });
    expect(await client.exists(runKeys('timeline-no-such-run').timeline)).toBe(0);
  });

  it('expires with the run when first written after the run ended', async () => {
    const client = redis.client();
    const store = new RunStore(client, { retentionDays: 1 });
    const timeline = new RunTimeline(client);
    await newRun(store, 'timeline-late', 2);
    await store.setStatus('timeline-late', 'cancelled');
    // A call in flight when the run was cancelled is booked after.
    await timeline.record('timeline-late', { spentMicros: 1_200 });
    const keys = runKeys('timeline-late');
    const [metaTtl, timelineTtl] = [await client.pttl(keys.meta), await client.pttl(keys.timeline)];
    expect(timelineTtl).toBeGreaterThan(0);
    expect(timelineTtl).toBeLessThanOrEqual(metaTtl);
    expect(metaTtl).toBeLessThanOrEqual(86_400_000);
  });

  it('uses the Redis clock when given no time', async () => {
    const client = redis.client();
    const store = new RunStore(client);
    const timeline = new RunTimeline(client);
    await newRun(store, 'timeline-clock', 1);
    const [seconds, micros] = await client.time();
    const before = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await timeline.record('timeline-clock', { rateLimited: 1, waits: { cooldown: 2 } });
    const read = await timeline.read('timeline-clock');
    expect(read.bucketMs).toBe(FIRST_WIDTH_MS);
    expect(read.startMs).toBeGreaterThanOrEqual(before);
    expect(read.points).toEqual([{ ...zero(), rateLimited: 1, waits: { ...zero().waits, cooldown: 2 }, t: read.startMs }]);
  });

  it('refuses an amount that is not an integer', async () => {
    const timeline = new RunTimeline(redis.client());
    await expect(timeline.record('timeline-clock', { spentMicros: 1.5 })).rejects.toThrow(RangeError);
  });

  it('reads an empty timeline for a run with nothing recorded', async () => {
    expect(await new RunTimeline(redis.client()).read('timeline-empty')).toEqual({ bucketMs: 0, startMs: 0, points: [] });
  });
});

describe('projectSpendMicros', () => {
  const point = (t: number, done: number, failed: number, spentMicros: number): TimelinePoint => ({ ...zero(), t, done, failed, spentMicros });

  it('adds the brands left at the spend per brand of the latest buckets holding 20 brands', () => {
    // Early brands cost 100 each, the latest 30 cost 300 each: the projection goes by the latest.
    const points = [point(0, 10, 0, 1_000), point(1, 0, 0, 1_000), point(2, 15, 5, 7_000), point(3, 10, 0, 10_000)];
    // The latest buckets with >= 20 brands: 3 and 2 (30 brands, 9,000 micros).
    expect(projectSpendMicros(points, 10_000, 100)).toBe(10_000 + 30_000);
  });

  it('uses the whole run when it has fewer than 20 brands, and nothing without a processed brand', () => {
    expect(projectSpendMicros([point(0, 2, 0, 500), point(1, 2, 0, 1_000)], 1_000, 10)).toBe(3_500);
    expect(projectSpendMicros([point(0, 0, 0, 700)], 700, 10)).toBe(700);
    expect(projectSpendMicros([], 0, 10)).toBe(0);
  });

  it('is what is spent when no brand is left', () => {
    expect(projectSpendMicros([point(0, 5, 0, 500)], 512, 0)).toBe(512);
  });
});

describe('RunTimeline.record', () => {
  it('refuses a time that is not a point in time (Infinity would break every later bucket)', async () => {
    await expect(new RunTimeline(redis.client()).record('any-run', { done: 1 }, Number.POSITIVE_INFINITY)).rejects.toBeInstanceOf(RangeError);
  });
});
