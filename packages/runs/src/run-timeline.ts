import type { Redis } from 'ioredis';
import type { DeferralReason } from '@brandq/limiter';
import { runKeys } from '@brandq/redis';
import { defineRunScripts } from './run-scripts.js';

/** Limiter waits by reason (a caller told to wait twice counts twice). */
export type TimelineWaits = Record<DeferralReason, number>;

/** What happened to a run in a stretch of time. */
export interface TimelineCounts {
  /** Brands that succeeded (counted with their outcome, once per brand). */
  done: number;
  /** Failures recorded (a brand failing again after a retry counts again). */
  failed: number;
  /** Money booked for settled calls, micro-dollars. */
  spentMicros: number;
  /** Provider answers 429. */
  rateLimited: number;
  waits: TimelineWaits;
}

/** What one record adds: any of the counters, the others stay. */
export type TimelineIncrement = Partial<Omit<TimelineCounts, 'waits'>> & { waits?: Partial<TimelineWaits> };

/** One bucket of the timeline, `spentMicros` summed from the run's first bucket on. */
export interface TimelinePoint extends TimelineCounts {
  /** Server ms at which the bucket starts. */
  t: number;
}

export interface RunTimelineData {
  /** Width of every bucket, ms: 10 s at first, doubled whenever the run outgrows 256 buckets. */
  bucketMs: number;
  /** Server ms of the run's first record (0 while nothing is recorded). */
  startMs: number;
  /** Every bucket from the first to the latest one recorded into (at most 256), empty ones included. */
  points: TimelinePoint[];
}

interface TimelineRedis extends Redis {
  brandqRecordTimeline(timeline: string, meta: string, now: string, ...counters: (string | number)[]): Promise<number>;
}

const WAIT_FIELD = 'wait.';

const noWaits = (): TimelineWaits => ({ requests: 0, tokens: 0, concurrency: 0, stagger: 0, cooldown: 0 });

/**
 * A run's timeline in Redis (timeline.lua): counters per time bucket, at a resolution that
 * stays a few hundred points whatever the run's length. The run's outcomes count `done` and
 * `failed` themselves (record-outcome.lua, in the same step); `record` adds the rest.
 */
/** The most points a run's timeline holds, whatever its length (lua/timeline.lua folds buckets to stay within it). */
export const TIMELINE_POINTS = 256;

export class RunTimeline {
  private readonly redis: TimelineRedis;

  constructor(redis: Redis) {
    defineRunScripts(redis);
    this.redis = redis as TimelineRedis;
  }

  /**
   * Adds `increment` to the bucket of now on the Redis clock (or of `atMs`, for tests that
   * move time). Nothing is written for a run that does not exist. Amounts are integers.
   */
  async record(runId: string, increment: TimelineIncrement, atMs?: number): Promise<void> {
    if (atMs !== undefined && !Number.isFinite(atMs)) throw new RangeError(`timeline time ${atMs} is not a point in time`);
    const counters: (string | number)[] = [];
    const add = (field: string, amount: number | undefined) => {
      if (amount === undefined || amount === 0) return;
      if (!Number.isSafeInteger(amount)) throw new RangeError(`timeline ${field} of ${amount}: expected an integer`);
      counters.push(field, amount);
    };
    add('done', increment.done);
    add('failed', increment.failed);
    add('spentMicros', increment.spentMicros);
    add('rateLimited', increment.rateLimited);
    for (const [reason, amount] of Object.entries(increment.waits ?? {})) add(WAIT_FIELD + reason, amount);
    if (counters.length === 0) return;
    const keys = runKeys(runId);
    await this.redis.brandqRecordTimeline(keys.timeline, keys.meta, atMs === undefined ? '' : String(Math.floor(atMs)), ...counters);
  }

  async read(runId: string): Promise<RunTimelineData> {
    const raw = await this.redis.hgetall(runKeys(runId).timeline);
    const startMs = Number(raw.start ?? 0);
    const bucketMs = Number(raw.width ?? 0);
    const buckets: TimelineCounts[] = [];
    for (const [field, value] of Object.entries(raw)) {
      const match = /^(\d+):(.+)$/.exec(field);
      if (!match) continue;
      const index = Number(match[1]);
      // The script never writes past the last bucket: a field beyond it is not the timeline's.
      if (index >= TIMELINE_POINTS) continue;
      while (buckets.length <= index) buckets.push({ done: 0, failed: 0, spentMicros: 0, rateLimited: 0, waits: noWaits() });
      const bucket = buckets[index] as TimelineCounts;
      const counter = match[2] as string;
      const amount = Number(value);
      if (counter.startsWith(WAIT_FIELD)) {
        const reason = counter.slice(WAIT_FIELD.length);
        if (reason in bucket.waits) bucket.waits[reason as DeferralReason] += amount;
      } else if (counter === 'done' || counter === 'failed' || counter === 'spentMicros' || counter === 'rateLimited') {
        bucket[counter] += amount;
      }
    }
    let spent = 0;
    const points = buckets.map((bucket, i): TimelinePoint => {
      spent += bucket.spentMicros;
      return { t: startMs + i * bucketMs, ...bucket, spentMicros: spent };
    });
    return { bucketMs, startMs, points };
  }
}

/** Brands the recent spend per brand is measured over: the latest buckets that hold at least this many. */
const RECENT_BRANDS = 20;

/**
 * The run's spend at its end if the brands left cost what the latest ones did: `spentMicros`
 * plus `remainingBrands` times the spend per processed brand (done or failed) over the latest
 * buckets holding at least 20 brands (or the whole run, if it has fewer). Until a brand has
 * been processed there is no rate to go by: the projection is what is spent.
 */
export function projectSpendMicros(points: readonly TimelinePoint[], spentMicros: number, remainingBrands: number): number {
  let brands = 0;
  let spent = 0;
  for (let i = points.length - 1; i >= 0 && brands < RECENT_BRANDS; i--) {
    const point = points[i] as TimelinePoint;
    const before = i > 0 ? (points[i - 1] as TimelinePoint).spentMicros : 0;
    brands += point.done + point.failed;
    spent += point.spentMicros - before;
  }
  if (brands === 0 || remainingBrands <= 0) return spentMicros;
  return Math.round(spentMicros + (remainingBrands * spent) / brands);
}
