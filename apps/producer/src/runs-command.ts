import { createBrandQueue } from '@brandq/queue';
import { RunStore, listRunsForRetention, pruneRuns, type PruneReport } from '@brandq/runs';
import { EXIT } from './exit-codes.js';
import { withRedis } from './with-redis.js';

function iso(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function megabytes(bytes: number | null): string {
  return bytes === null ? 'size unknown' : `${(bytes / 1_048_576).toFixed(2)} MB`;
}

/** `brandq runs list`: the newest runs, when each ended and when its keys expire. */
export async function runsListCommand(flags: { limit?: number; json?: boolean }): Promise<number> {
  return withRedis(async (_config, redis) => {
    const listings = await listRunsForRetention({ runs: new RunStore(redis) }, flags.limit === undefined ? {} : { limit: flags.limit });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ runs: listings }, null, 2)}\n`);
      return EXIT.ok;
    }
    if (listings.length === 0) process.stdout.write('no runs\n');
    for (const { run, endedAt, expiresAt } of listings) {
      process.stdout.write(
        `${run.id}  ${run.status.padEnd(16)} ${run.succeeded + run.failed}/${run.total} done  created ${iso(run.createdAt)}  ended ${iso(endedAt)}  expires ${expiresAt === undefined ? 'never (kept)' : iso(expiresAt)}\n`,
      );
    }
    return EXIT.ok;
  });
}

function renderPrune(report: PruneReport): string {
  const lines = report.runs.map((r) => `  ${r.id}  ${r.status}  ended ${iso(r.endedAt)}  ${r.keys.length} keys, ${r.jobs} jobs`);
  for (const k of report.kept) lines.push(`  kept ${k.id}: ${k.reason === 'jobs_active' ? 'a worker holds one of its jobs' : 'it runs again'}`);
  const { runs, keys, jobs, bytes } = report.totals;
  const verb = report.dryRun ? 'would delete' : 'deleted';
  lines.push(`${verb} ${runs} run${runs === 1 ? '' : 's'} ended before ${iso(report.cutoff)}: ${keys} keys, ${jobs} jobs, ${megabytes(bytes)}`);
  if (report.dryRun && runs > 0) lines.push('dry run: add --yes to delete them');
  return `${lines.join('\n')}\n`;
}

/** `brandq runs prune`: runs that ended (completed, cancelled) at least `olderThanMs` ago; a dry run unless --yes. */
export async function runsPruneCommand(flags: { olderThan: number; yes?: boolean; json?: boolean }): Promise<number> {
  return withRedis(async (_config, redis) => {
    const queue = createBrandQueue(redis);
    try {
      const report = await pruneRuns({ redis, runs: new RunStore(redis), queue }, { olderThanMs: flags.olderThan, dryRun: flags.yes !== true });
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : renderPrune(report));
      return EXIT.ok;
    } finally {
      await queue.close();
    }
  });
}
