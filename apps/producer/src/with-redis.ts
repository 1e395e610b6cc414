import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '@brandq/config';
import { BadInputError } from '@brandq/errors';
import type { RunMeta, RunStore } from '@brandq/runs';
import { connectRedis } from './connect.js';

/** Loads the config, connects to Redis, runs the body and disconnects, whatever happened. */
export async function withRedis<T>(body: (config: Config, redis: Redis) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const redis = await connectRedis(config);
  try {
    return await body(config, redis);
  } finally {
    redis.disconnect();
  }
}

/** A run named on the command line: an error (exit 1), not a usage mistake, when Redis has no such run. */
export async function requireRun(runs: RunStore, runId: string): Promise<RunMeta> {
  const run = await runs.getRun(runId);
  if (!run) throw new BadInputError(`run ${runId} not found`, { details: { runId } });
  return run;
}
