import type { Redis } from 'ioredis';
import { fairShareKeys } from '@brandq/redis';

/** Counts go in buckets of this many ms; a share is read over `SHARE_WINDOW_MS` of them. */
export const SHARE_BUCKET_MS = 5_000;
/** The window a run's measured share and ETA are read over: the last minute. */
export const SHARE_WINDOW_MS = 60_000;
/** A bucket outlives the window it can be read in. */
const BUCKET_TTL_MS = SHARE_WINDOW_MS + 2 * SHARE_BUCKET_MS;

/** One run's use of the fleet over the last minute. */
export interface MeasuredShare {
  /** Calls the shared limiter admitted for the run (all providers). */
  calls: number;
  /** Brands the run finished. */
  done: number;
  /** The run's part of all admitted calls of the fleet (0..1), 0 when nothing was admitted. */
  share: number;
}

export interface FleetShares {
  windowMs: number;
  /** All admitted calls of the fleet in the window. */
  calls: number;
  runs: Map<string, MeasuredShare>;
}

const field = (runId: string, what: 'calls' | 'done') => `${runId}|${what}`;

/**
 * Measures each run's share of the fleet: admitted calls and finished brands per run, in
 * 5-second buckets on the workers' clocks (kept in sync by NTP; a bucket is far wider than
 * their drift). Written by workers, read by `status` and the board.
 */
export class RunShares {
  constructor(
    private readonly redis: Redis,
    private readonly now: () => number = Date.now,
  ) {}

  /** The limiter admitted one call of `runId`. */
  admitted(runId: string): Promise<void> {
    return this.count(runId, 'calls');
  }

  /** A brand of `runId` is finished (result stored). */
  finished(runId: string): Promise<void> {
    return this.count(runId, 'done');
  }

  private async count(runId: string, what: 'calls' | 'done'): Promise<void> {
    const key = fairShareKeys.window(bucketOf(this.now()));
    await this.redis.multi().hincrby(key, field(runId, what), 1).pexpire(key, BUCKET_TTL_MS).exec();
  }

  /** Every run's measured share over the last minute. */
  async measure(): Promise<FleetShares> {
    const now = this.now();
    const buckets: number[] = [];
    for (let b = bucketOf(now - SHARE_WINDOW_MS + SHARE_BUCKET_MS); b <= now; b += SHARE_BUCKET_MS) buckets.push(b);
    const rows = await Promise.all(buckets.map((b) => this.redis.hgetall(fairShareKeys.window(b))));
    const runs = new Map<string, MeasuredShare>();
    let calls = 0;
    for (const row of rows) {
      for (const [name, raw] of Object.entries(row)) {
        const cut = name.lastIndexOf('|');
        const runId = name.slice(0, cut);
        const what = name.slice(cut + 1);
        const n = Number(raw);
        if (!Number.isFinite(n)) continue;
        const entry = runs.get(runId) ?? { calls: 0, done: 0, share: 0 };
        if (what === 'calls') {
          entry.calls += n;
          calls += n;
        } else if (what === 'done') entry.done += n;
        runs.set(runId, entry);
      }
    }
    for (const entry of runs.values()) entry.share = calls === 0 ? 0 : entry.calls / calls;
    return { windowMs: Math.max(1, now - (buckets[0] ?? now)), calls, runs };
  }
}

function bucketOf(ms: number): number {
  return Math.floor(ms / SHARE_BUCKET_MS) * SHARE_BUCKET_MS;
}

/** Seconds until `remaining` brands are done at the pace measured (`done` in `windowMs`); undefined when nothing finished. */
export function etaSeconds(remaining: number, measured: Pick<MeasuredShare, 'done'> | undefined, windowMs: number): number | undefined {
  if (remaining <= 0) return 0;
  if (!measured || measured.done <= 0) return undefined;
  return Math.ceil(remaining / (measured.done / (windowMs / 1000)));
}
