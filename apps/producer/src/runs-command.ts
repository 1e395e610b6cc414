import { userInfo } from 'node:os';
import { DEFAULT_WEIGHT } from '@brandq/fair-share';
import { createBrandQueue } from '@brandq/queue';
import { runControls } from '@brandq/run-service';
import { RunStore, listRunsForRetention, pruneRuns, type PruneReport } from '@brandq/runs';
import { shareWords } from './enqueue-command.js';
import { EXIT } from './exit-codes.js';
import { UsageError } from './usage-error.js';
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

export interface RunsSetFlags {
  weight?: number;
  /** `none` lifts the run's own ceiling. */
  maxRpm?: number | 'none';
}

/** Who changed a run from the command line, for its history (the board records its basic-auth user). */
function cliUser(): string {
  try {
    return `${userInfo().username} (cli)`;
  } catch {
    // A uid without a name (a container's arbitrary user): the history still says where it came from.
    return 'cli';
  }
}

/**
 * `brandq runs set <run-id>`: the run's weight and/or its own ceiling, through the same
 * control as the board's (its queued jobs are re-tagged, the change goes in its history).
 */
export async function runsSetCommand(runId: string, flags: RunsSetFlags): Promise<number> {
  if (flags.weight === undefined && flags.maxRpm === undefined) throw new UsageError('give --weight <n>, --max-rpm <n|none> or both');
  const share = { ...(flags.weight === undefined ? {} : { weight: flags.weight }), ...(flags.maxRpm === undefined ? {} : { maxRpm: flags.maxRpm === 'none' ? null : flags.maxRpm }) };
  return withRedis(async (config, redis) => {
    const queue = createBrandQueue(redis);
    try {
      const { run, history } = await runControls({ redis, queue, config }).share(runId, share, cliUser());
      // The entry just written comes first in the history the control answers with.
      const retagged = history[0]?.details.retagged;
      const moved = typeof retagged === 'number' && retagged > 0 ? `; ${retagged} queued jobs take their new place` : '';
      process.stdout.write(`run ${runId}: ${shareWords({ weight: run.weight ?? DEFAULT_WEIGHT, maxRpm: run.maxRpm ?? null })}${moved}\n`);
      return EXIT.ok;
    } finally {
      await queue.close();
    }
  });
}
