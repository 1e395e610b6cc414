import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BrandQueue } from '@brandq/queue';
import { defineScripts, fairShareKeys } from '@brandq/redis';
import { prioritiesFrom, tagOfPriority } from './fair-tags.js';

const SCRIPTS = [{ name: 'brandqAssignTags', file: new URL('../lua/assign-tags.lua', import.meta.url), numberOfKeys: 1 }] as const;

interface FairScripts {
  brandqAssignTags(state: string, runId: string, count: number, weight: number, front: number, reset: '0' | '1', mode: 'extend' | 'restart'): Promise<string>;
}

/**
 * Moves a job to `priority`; a job that finished and was removed since its state was read
 * (a worker raced the move) is left alone: it needs no place any more.
 */
export async function moveJob(job: Job, priority: number): Promise<boolean> {
  try {
    await job.changePriority({ priority });
    return true;
  } catch (err) {
    if (err instanceof Error && /Missing key/i.test(err.message)) return false;
    throw err;
  }
}

/** BullMQ states of a job that waits its turn: these hold a place in the fair order. */
const WAITING_STATES: ReadonlySet<string> = new Set(['prioritized', 'waiting', 'delayed']);

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
   * at `weight` (see `restartPriorities`). Only jobs still waiting their turn (queued or
   * delayed) take a new place: a running job holds none, and tagging it would push the
   * run's queued jobs back by as many places. Returns how many jobs were re-tagged.
   */
  async retag(runId: string, jobIds: readonly string[], weight: number): Promise<number> {
    const queued: Job[] = [];
    for (let i = 0; i < jobIds.length; i += RETAG_CONCURRENCY) {
      const jobs = await Promise.all(jobIds.slice(i, i + RETAG_CONCURRENCY).map((id) => this.waitingJob(id)));
      for (const job of jobs) if (job) queued.push(job);
    }
    const priorities = await this.restartPriorities(runId, queued.length, weight);
    for (let i = 0; i < queued.length; i += RETAG_CONCURRENCY) {
      await Promise.all(queued.slice(i, i + RETAG_CONCURRENCY).map((job, j) => moveJob(job, priorities[i + j] as number)));
    }
    return queued.length;
  }

  /** The job if it still waits its turn (queued or delayed); undefined when it runs, finished or is gone. */
  async waitingJob(jobId: string): Promise<Job | undefined> {
    const job = await Job.fromId(this.queue, jobId);
    if (!job) return undefined;
    return WAITING_STATES.has(await job.getState()) ? job : undefined;
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
