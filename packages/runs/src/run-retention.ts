import type { Redis } from 'ioredis';
import { brandJobId, type BrandQueue } from '@brandq/queue';
import { runIndexKeys, runKeyList } from '@brandq/redis';
import type { RunStore } from './run-store.js';
import type { RunMeta, RunStatus } from './run-types.js';

/** Ended runs: the only ones retention expires or prunes. Held runs (paused, budget_exhausted) wait for a resume and keep their queued jobs. */
const ENDED: ReadonlySet<RunStatus> = new Set(['completed', 'cancelled']);

/** Commands sent at once while measuring or removing a run's jobs. */
const BATCH = 500;

export interface RetentionDeps {
  redis: Redis;
  runs: RunStore;
  /** The brand queue: a pruned run's jobs still in it (kept completed or failed jobs, waiting jobs of a cancelled run) go too. */
  queue: Pick<BrandQueue, 'remove' | 'toKey'>;
}

export interface RunRetentionListing {
  run: RunMeta;
  /** Completed or cancelled: expires with its retention, can be pruned. */
  ended: boolean;
  /** When it ended (server ms), for an ended run. */
  endedAt?: number;
  /** When its keys expire (server ms); absent while they are kept. */
  expiresAt?: number;
}

/** The newest `limit` runs (all statuses), each with when it ended and when its keys expire. */
export async function listRunsForRetention(deps: Pick<RetentionDeps, 'runs'>, options: { limit?: number } = {}): Promise<RunRetentionListing[]> {
  const runs = await deps.runs.listRuns(options.limit ?? 100);
  return Promise.all(
    runs.map(async (run) => {
      const listing: RunRetentionListing = { run, ended: ENDED.has(run.status) };
      if (listing.ended) listing.endedAt = endedAt(run);
      const expiresAt = await deps.runs.expiresAt(run.id);
      if (expiresAt !== undefined) listing.expiresAt = expiresAt;
      return listing;
    }),
  );
}

export interface PruneOptions {
  /** Prune runs that ended at least this long ago (ms, >= 0). */
  olderThanMs: number;
  /** Only report what would be deleted (the default); false deletes. */
  dryRun?: boolean;
}

export interface PrunableRun {
  id: string;
  sourceKey: string;
  status: RunStatus;
  /** When it ended (server ms). */
  endedAt: number;
  /** The run's keys that exist (all of `runKeys`, its meta among them). */
  keys: string[];
  /** Memory of those keys (MEMORY USAGE, bytes), null where Redis does not allow MEMORY USAGE. */
  keyBytes: number | null;
  /** Its BullMQ jobs still in the queue (job ids `<run>.<brand key>`). */
  jobs: number;
  /** Memory of those jobs' hashes and logs, as above. */
  jobBytes: number | null;
}

export interface KeptRun {
  id: string;
  /** `jobs_active`: a worker holds one of its jobs; `resumed`: it runs again or ended later, since it was listed. */
  reason: 'jobs_active' | 'resumed';
}

export interface PruneReport {
  dryRun: boolean;
  /** Runs that ended at or before this server time (ms) are pruned. */
  cutoff: number;
  /** Runs deleted, or that a dry run would delete. */
  runs: PrunableRun[];
  /** Runs that matched but were left in place (never in a dry run). */
  kept: KeptRun[];
  totals: { runs: number; keys: number; jobs: number; bytes: number | null };
}

/**
 * Finds the runs that ended (completed, cancelled) at least `olderThanMs` ago and, unless
 * it is a dry run (the default), deletes each: its BullMQ jobs first (a run one of whose
 * jobs a worker holds is kept, and taken by a later prune), then every key of the run in
 * one script that checks it is still ended (same hash tag, one Cluster slot), then its
 * entries in the global indexes, one single-key command each.
 */
export async function pruneRuns(deps: RetentionDeps, options: PruneOptions): Promise<PruneReport> {
  const { olderThanMs } = options;
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw new RangeError(`prune older than ${olderThanMs} ms: expected a duration >= 0`);
  const dryRun = options.dryRun ?? true;
  const cutoff = (await serverTimeMs(deps.redis)) - olderThanMs;
  const report: PruneReport = { dryRun, cutoff, runs: [], kept: [], totals: { runs: 0, keys: 0, jobs: 0, bytes: 0 } };

  for (const run of await endedRunsBefore(deps, cutoff)) {
    const keys = await measureKeys(deps.redis, runKeyList(run.id));
    const jobIds: string[] = [];
    for await (const brand of deps.runs.brands(run.id)) jobIds.push(brandJobId(run.id, brand.key));
    const jobs = await measureJobs(deps, jobIds);
    if (!dryRun) {
      const kept = await deleteRun(deps, run, jobs.present, cutoff);
      if (kept) {
        report.kept.push({ id: run.id, reason: kept });
        continue;
      }
    }
    report.runs.push({
      id: run.id,
      sourceKey: run.sourceKey,
      status: run.status,
      endedAt: endedAt(run),
      keys: keys.present,
      keyBytes: keys.bytes,
      jobs: jobs.present.length,
      jobBytes: jobs.bytes,
    });
    report.totals.runs++;
    report.totals.keys += keys.present.length;
    report.totals.jobs += jobs.present.length;
    report.totals.bytes = keys.bytes === null || jobs.bytes === null || report.totals.bytes === null ? null : report.totals.bytes + keys.bytes + jobs.bytes;
  }
  return report;
}

/**
 * Deletes the run's jobs, then the run; the reason it was kept instead, if it was. The run
 * is read again right before its jobs go, so a resume since it was listed keeps its jobs.
 */
async function deleteRun(deps: RetentionDeps, run: RunMeta, jobIds: string[], cutoff: number): Promise<KeptRun['reason'] | undefined> {
  if (!isPrunable(await deps.runs.getRun(run.id), cutoff)) return 'resumed';
  let locked = 0;
  for (let i = 0; i < jobIds.length; i += BATCH) {
    const removed = await Promise.all(jobIds.slice(i, i + BATCH).map((id) => deps.queue.remove(id)));
    locked += removed.filter((r) => r !== 1).length;
  }
  if (locked > 0) return 'jobs_active';
  return (await deps.runs.deleteEndedRun(run, cutoff)) ? undefined : 'resumed';
}

/** Ended runs that ended at or before `cutoff`, from the index of all runs (created no later than they ended). */
async function endedRunsBefore(deps: Pick<RetentionDeps, 'redis' | 'runs'>, cutoff: number): Promise<RunMeta[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += BATCH) {
    const page = await deps.redis.zrangebyscore(runIndexKeys.all, '-inf', cutoff, 'LIMIT', offset, BATCH);
    ids.push(...page);
    if (page.length < BATCH) break;
  }
  const runs: RunMeta[] = [];
  for (const id of ids) {
    const run = await deps.runs.getRun(id);
    if (isPrunable(run, cutoff)) runs.push(run);
  }
  return runs;
}

function isPrunable(run: RunMeta | undefined, cutoff: number): run is RunMeta {
  return run !== undefined && ENDED.has(run.status) && endedAt(run) <= cutoff;
}

/** When the run ended; a run cancelled before `finishedAt` was written for cancellations has its last update. */
function endedAt(run: RunMeta): number {
  return run.finishedAt ?? run.updatedAt;
}

interface Measured {
  present: string[];
  bytes: number | null;
}

/** Which of `keys` exist and their memory: MEMORY USAGE answers both (null = no such key); without it, EXISTS. */
async function measureKeys(redis: Redis, keys: string[]): Promise<Measured> {
  const present: string[] = [];
  let bytes: number | null = 0;
  for (let i = 0; i < keys.length; i += BATCH) {
    const chunk = keys.slice(i, i + BATCH);
    const usage = bytes === null ? undefined : await Promise.all(chunk.map((key) => memoryUsage(redis, key))).catch(() => undefined);
    if (usage) {
      chunk.forEach((key, j) => {
        const used = usage[j];
        if (used !== null && used !== undefined) {
          present.push(key);
          bytes = (bytes as number) + used;
        }
      });
      continue;
    }
    bytes = null;
    const exists = await Promise.all(chunk.map((key) => redis.exists(key)));
    chunk.forEach((key, j) => {
      if (exists[j] === 1) present.push(key);
    });
  }
  return { present, bytes };
}

/** The jobs among `jobIds` still in the queue, and the memory of their hashes and logs. */
async function measureJobs(deps: Pick<RetentionDeps, 'redis' | 'queue'>, jobIds: string[]): Promise<Measured> {
  const jobKeys = new Map(jobIds.map((id) => [deps.queue.toKey(id), id]));
  const hashes = await measureKeys(deps.redis, [...jobKeys.keys()]);
  const logs = await measureKeys(deps.redis, hashes.present.map((key) => `${key}:logs`));
  return {
    present: hashes.present.map((key) => jobKeys.get(key) as string),
    bytes: hashes.bytes === null || logs.bytes === null ? null : hashes.bytes + logs.bytes,
  };
}

/** Exact (SAMPLES 0: every field counted; sampled estimates of hashes with one large field are far off). */
async function memoryUsage(redis: Redis, key: string): Promise<number | null> {
  const used = (await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null;
  return used === null ? null : Number(used);
}

async function serverTimeMs(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
