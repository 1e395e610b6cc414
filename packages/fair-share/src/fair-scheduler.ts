import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BrandQueue } from '@brandq/queue';
import { defineScripts, fairShareKeys } from '@brandq/redis';
import { prioritiesFrom, tagOfPriority } from './fair-tags.js';

const SCRIPTS = [{ name: 'brandqAssignTags', file: new URL('../lua/assign-tags.lua', import.meta.url), numberOfKeys: 1 }] as const;

interface FairScripts {
  brandqAssignTags(state: string, runId: string, count: number, weight: number, front: number, reset: '0' | '1', mode: 'extend' | 'restart'): Promise<string>;
}

/** Jobs re-tagged at once when a run's queued jobs move (a weight change, a resume). */
const RETAG_CONCURRENCY = 200;

/**
 * Gives each run's jobs their place in the fleet's one queue: BullMQ priorities that
 * interleave the runs by weight (see fair-tags.ts). Producers ask for the priorities of
 * the jobs they add; a weight change or a resume re-tags the run's queued jobs from the
 * queue's current virtual time, so a run never banks credit while it waits.
 */
export class FairScheduler {
  private readonly redis: Redis & FairScripts;

  constructor(
    redis: Redis,
    private readonly queue: BrandQueue,
  ) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as Redis & FairScripts;
  }

  /** The priorities of `count` new jobs of `runId`, in the order they are added. */
  async prioritiesFor(runId: string, count: number, weight: number): Promise<number[]> {
    if (count === 0) return [];
    const start = await this.startOf(runId, count, weight, 'extend');
    return prioritiesFrom(start, count, weight);
  }

  /**
   * The priorities of the run's `count` queued jobs when they take a new place (a weight
   * change, a resume): from the queue's current virtual time, so a run never banks credit
   * while it waits or is held.
   */
  async restartPriorities(runId: string, count: number, weight: number): Promise<number[]> {
    if (count === 0) return [];
    const start = await this.startOf(runId, count, weight, 'restart');
    return prioritiesFrom(start, count, weight);
  }

  /**
   * Re-tags the run's jobs `jobIds` (its unfinished brands, in the order they should go)
   * at `weight` (see `restartPriorities`). A job that finished or is gone meanwhile is
   * left alone; a running or delayed one takes its new place when it queues again.
   * Returns how many jobs were re-tagged.
   */
  async retag(runId: string, jobIds: readonly string[], weight: number): Promise<number> {
    const priorities = await this.restartPriorities(runId, jobIds.length, weight);
    let retagged = 0;
    for (let i = 0; i < jobIds.length; i += RETAG_CONCURRENCY) {
      const chunk = jobIds.slice(i, i + RETAG_CONCURRENCY);
      const done = await Promise.all(chunk.map(async (id, j) => ((await this.changePriority(id, priorities[i + j] as number)) ? 1 : 0)));
      retagged += done.reduce<number>((a, b) => a + b, 0);
    }
    return retagged;
  }

  /** Moves one job to `priority`; false when it is gone or finished. */
  async changePriority(jobId: string, priority: number): Promise<boolean> {
    const job = await Job.fromId(this.queue, jobId);
    if (!job || job.finishedOn !== undefined) return false;
    await job.changePriority({ priority });
    return true;
  }

  private async startOf(runId: string, count: number, weight: number, mode: 'extend' | 'restart'): Promise<number> {
    const [front] = await this.queue.getJobs(['prioritized'], 0, 0, true);
    let reset: '0' | '1' = '0';
    if (!front) {
      // Nothing waits its turn: when nothing runs or waits out a delay either, the fleet is
      // idle and virtual time starts again at 0, so tags never climb to BullMQ's limit.
      const counts = await this.queue.getJobCounts('active', 'delayed', 'waiting', 'waiting-children');
      if (Object.values(counts).every((n) => n === 0)) reset = '1';
    }
    const frontTag = front ? tagOfPriority(front.priority) : -1;
    return Number(await this.redis.brandqAssignTags(fairShareKeys.state, runId, count, weight, frontTag, reset, mode));
  }
}
