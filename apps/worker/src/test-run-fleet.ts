import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '@brandq/config';
import type { Fakes, FakesOptions } from '@brandq/fakes';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { createRedis } from '@brandq/redis';
import { runControls, type RunControls } from '@brandq/run-service';
import { RunStore } from '@brandq/runs';
import type { SpawnedProcess } from '@brandq/testing';
import { startOpenFakes, startWorkers, stopWorkers, waitFor, waitForWorkersReady, workerEnv } from './test-support.js';

/** Worker processes over one Redis and the fakes, with what a test drives runs through in-process. */
export interface RunFleet {
  fakes: Fakes;
  config: Config;
  client: Redis;
  queue: BrandQueue;
  runs: RunStore;
  controls: RunControls;
  workers: SpawnedProcess[];
}

export async function startRunFleet(redisUrl: string, opts: { fakes: FakesOptions; env?: Record<string, string>; workers: number; concurrency: number }): Promise<RunFleet> {
  const fakes = await startOpenFakes(opts.fakes);
  const env = workerEnv(fakes, redisUrl, opts.env);
  const config = loadConfig(env);
  const client = createRedis(redisUrl);
  const queue = createBrandQueue(client);
  const workers = startWorkers(opts.workers, env, opts.concurrency);
  await waitForWorkersReady(queue, opts.workers);
  return { fakes, config, client, queue, runs: new RunStore(client), controls: runControls({ redis: client, queue, config }), workers };
}

/**
 * After a test, so the next one starts on an idle fleet: the runs `runIds` left unfinished
 * are cancelled, then the queue (and whatever `alsoIdle` checks) must be empty.
 */
export async function drainRunFleet(fleet: RunFleet, runIds: readonly string[], opts: { what: string; timeoutMs: number; alsoIdle?: () => Promise<boolean> }): Promise<void> {
  for (const runId of runIds) {
    const run = await fleet.runs.getRun(runId);
    if (run && run.status !== 'completed' && run.status !== 'cancelled') await fleet.controls.cancel(runId, 'test');
  }
  await waitFor(
    opts.what,
    async () => {
      const counts = await fleet.queue.getJobCounts('active', 'waiting', 'prioritized', 'delayed');
      return Object.values(counts).every((n) => n === 0) && (opts.alsoIdle ? await opts.alsoIdle() : true);
    },
    opts.timeoutMs,
  );
}

export async function stopRunFleet(fleet: RunFleet | undefined): Promise<void> {
  if (!fleet) return;
  await stopWorkers(fleet.workers);
  await fleet.queue.close();
  fleet.client.disconnect();
  await fleet.fakes.close();
}
