import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@brandq/errors';
import { createBrandQueue } from '@brandq/queue';
import { RunStore } from '@brandq/runs';
import { checkEnqueueFlags, enqueueFromFlags, type EnqueueFlags } from './enqueue-command.js';
import { EXIT, exitCodeForRun } from './exit-codes.js';
import { exportRun } from '@brandq/run-service';
import { checkExportTarget } from './export-command.js';
import { followRun } from './follow.js';
import { startWorkerFleet, type WorkerFleet } from './worker-fleet.js';
import { withRedis } from './with-redis.js';

export interface FleetRunFlags extends EnqueueFlags {
  workers?: number;
  concurrency?: number;
  /** Where the results go (default out/<run>.csv). */
  out?: string;
  bom: boolean;
}

/** Where `brandq run` writes what it makes by default. */
const OUT_DIR = 'out';
/** What a stopped worker gets beyond its grace period before it is killed: its own closing margin (5 s) and some. */
const STOP_MARGIN_MS = 10_000;

/**
 * `brandq run`: the whole job on this machine in one command. Enqueues, starts N worker
 * processes, follows the run to its end, stops the workers, exports the results and exits
 * with the run's outcome. Ctrl+C (or SIGTERM) stops the workers gracefully; a second one
 * kills them at once. Workers elsewhere may join the same run.
 */
export async function fleetRunCommand(flags: FleetRunFlags): Promise<number> {
  checkEnqueueFlags(flags);
  if (flags.out !== undefined) await checkExportTarget(flags.out);
  return withRedis(async (config, redis) => {
    const queue = createBrandQueue(redis);
    const interrupt = new AbortController();
    let fleet: WorkerFleet | undefined;
    let interrupted = false;
    const onSignal = () => {
      if (interrupted) {
        fleet?.kill();
        process.exit(EXIT.interrupted);
      }
      interrupted = true;
      interrupt.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000 + STOP_MARGIN_MS;
    try {
      const { runId } = await enqueueFromFlags({ config, redis, queue }, flags);
      // A dry run, or a source with nothing left to do: no worker to start.
      if (!runId) return EXIT.ok;
      if (interrupted) return EXIT.interrupted;
      await mkdir(OUT_DIR, { recursive: true });
      const count = flags.workers ?? availableParallelism();
      const logPath = join(OUT_DIR, `${runId}.workers.log`);
      fleet = startWorkerFleet({ count, concurrency: flags.concurrency, logPath });
      process.stdout.write(`started ${count} worker${count === 1 ? '' : 's'} (pids ${fleet.pids.join(', ')}), their logs in ${logPath}\n`);
      // Workers that all died (a bad configuration, a crash) would leave the run waiting forever.
      void fleet.allExited.then(() => interrupt.abort());
      const followed = await followRun(redis, runId, config, { signal: interrupt.signal, detachedNote: 'stopping the workers (active jobs finish or go back to the queue)' });
      await fleet.stop(graceMs);
      if (followed.detached && !interrupted) {
        throw new ConfigError(`every worker exited before run ${runId} ended: see ${logPath}`, { details: { runId, logPath } });
      }
      if (followed.detached) return EXIT.interrupted;
      const exportPath = flags.out ?? join(OUT_DIR, `${runId}.csv`);
      const rows = await exportRun(new RunStore(redis), runId, exportPath, { bom: flags.bom });
      process.stdout.write(`wrote ${rows} rows to ${exportPath}\n`);
      return exitCodeForRun(followed.run);
    } finally {
      await fleet?.stop(graceMs);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      await queue.close();
    }
  });
}
