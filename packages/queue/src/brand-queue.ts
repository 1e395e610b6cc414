import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import { QUEUE_PREFIX } from '@brandq/redis';
import { BRAND_QUEUE, type BrandJobData } from './job-data.js';

export interface RetentionOptions {
  keepCompleted: number;
  keepFailed: number;
}

/** Custom backoff type name; workers register the strategy that reads provider waits. */
export const BACKOFF_TYPE = 'brandq';

export function brandJobOptions(attempts: number, retention: RetentionOptions): DefaultJobOptions {
  return {
    attempts,
    backoff: { type: BACKOFF_TYPE },
    // Results live in the run's hashes, so finished jobs only need to stay for inspection.
    removeOnComplete: { count: retention.keepCompleted },
    removeOnFail: { count: retention.keepFailed },
  };
}

export type BrandQueue = Queue<BrandJobData, unknown, string>;

export function createBrandQueue(connection: ConnectionOptions): BrandQueue {
  return new Queue<BrandJobData, unknown, string>(BRAND_QUEUE, { connection, prefix: QUEUE_PREFIX });
}
