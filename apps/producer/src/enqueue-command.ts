import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { BadInputError, ConfigError } from '@brandq/errors';
import { CostLedger, microsToUsd, usdToMicros } from '@brandq/ledger';
import type { BrandQueue } from '@brandq/queue';
import { RunStore, newRunId } from '@brandq/runs';
import { formatEstimate } from '@brandq/preflight';
import { enqueueRun, loadSource, nothingToDo, preflightRun, requeueRun, skipAlreadyProcessed, sourceKeyFor, type LoadedSource, type SourceSpec } from '@brandq/enqueue';
import { UsageError } from './usage-error.js';
import { requireRun } from './with-redis.js';

/** The flags `brandq enqueue` and `brandq run` share, as commander parsed them. */
export interface EnqueueFlags {
  csv?: string;
  column?: string;
  sheet?: string;
  range: string;
  resultColumn?: string;
  limit?: number;
  run?: string;
  budget?: number;
  resume?: boolean;
  force?: boolean;
  retryFailed?: boolean;
  /** false with --no-cache. */
  cache: boolean;
  dryRun?: boolean;
  allowPartial?: boolean;
  json?: boolean;
}

export interface EnqueueDeps {
  config: Config;
  redis: Redis;
  queue: BrandQueue;
}

/** What an enqueue left to follow: a run id, or nothing (dry run, nothing to do). */
export interface EnqueueOutcome {
  runId?: string;
}

/** Usage rules checked before anything is loaded or connected. */
export function checkEnqueueFlags(flags: EnqueueFlags): void {
  if (flags.resume && flags.force) throw new UsageError('--resume and --force conflict: --resume skips processed brands, --force reprocesses them');
  if (flags.retryFailed && !flags.run) throw new UsageError('--retry-failed needs --run <id>');
  const continuing = flags.resume === true || flags.retryFailed === true;
  if (!continuing && Boolean(flags.csv) === Boolean(flags.sheet)) throw new UsageError('give exactly one of --csv or --sheet');
  if (flags.resume && !flags.run && !flags.csv && !flags.sheet) throw new UsageError('--resume needs the source (--csv or --sheet) or --run');
  if (flags.json && !flags.dryRun) throw new UsageError('--json goes with --dry-run (the preflight estimate)');
}

function sourceSpec(flags: EnqueueFlags): SourceSpec {
  return { csv: flags.csv, sheet: flags.sheet, range: flags.range, column: flags.column, resultColumn: flags.resultColumn, limit: flags.limit };
}

/** A sheet is read with one of two documented credentials; without either, say which. */
function checkSheetCredentials(config: Config): void {
  if (config.GOOGLE_SHEETS_ACCESS_TOKEN || config.GOOGLE_APPLICATION_CREDENTIALS) return;
  throw new ConfigError(
    'reading a Google Sheet needs credentials: set GOOGLE_APPLICATION_CREDENTIALS (a service account key file, with the sheet shared with its e-mail) ' +
      'or GOOGLE_SHEETS_ACCESS_TOKEN (an OAuth access token)',
    { details: { variables: ['GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_SHEETS_ACCESS_TOKEN'] } },
  );
}

/** A source without one valid brand is a mistake to report, not an empty run to complete. */
function refuseEmptySource(spec: SourceSpec, loaded: LoadedSource): void {
  if (loaded.brands.length > 0) return;
  const where = spec.csv ? spec.csv : `sheet ${spec.sheet ?? ''} range ${spec.range}`;
  const invalid = loaded.skipped.length;
  throw new BadInputError(`no brands in ${where}${invalid > 0 ? ` (${invalid} ${invalid === 1 ? 'row' : 'rows'} skipped as invalid, see above)` : ''}`, {
    details: { source: loaded.sourceKey, skipped: invalid },
  });
}

/**
 * `brandq enqueue` without the following: resume, retry the failed brands, or load the
 * source, check it with the preflight guard and create the run. Says what it did on stdout
 * (skipped rows on stderr); with --dry-run --json, stdout is the estimate as one JSON document.
 */
export async function enqueueFromFlags(deps: EnqueueDeps, flags: EnqueueFlags): Promise<EnqueueOutcome> {
  const { config, redis, queue } = deps;
  const spec = sourceSpec(flags);
  const retention = { keepCompleted: config.JOB_KEEP_COMPLETED, keepFailed: config.JOB_KEEP_FAILED };
  const runs = new RunStore(redis, { retentionDays: config.RUN_RETENTION_DAYS });
  const ledger = new CostLedger(redis);
  const retryFailed = flags.retryFailed === true;
  if (flags.resume === true || retryFailed) {
    const found = flags.run ?? (await runs.latestRunForSource(sourceKeyFor(spec)));
    if (!found) throw new BadInputError(`no earlier run of ${sourceKeyFor(spec)} to resume`);
    const previous = await requireRun(runs, found);
    await runs.indexRun(previous);
    const before = await ledger.snapshot(found);
    const { requeued, reopened } = await requeueRun({ runs, queue, ledger }, found, {
      retryFailed,
      attempts: config.JOB_ATTEMPTS,
      retention,
      budgetMicros: flags.budget === undefined ? undefined : usdToMicros(flags.budget),
    });
    process.stdout.write(
      `${retryFailed ? 'retrying failed brands of' : 'resuming'} run ${found}: processed ${previous.succeeded + previous.failed}/${previous.total} ` +
        `(success ${previous.succeeded}, failed ${previous.failed}), cost so far $${microsToUsd(before.spentMicros).toFixed(2)}` +
        `${flags.budget !== undefined ? `, new budget $${flags.budget.toFixed(2)}` : ''}; ${requeued} brands queued${retryFailed ? ` (${reopened} reopened)` : ''}\n`,
    );
    return { runId: found };
  }

  if (spec.sheet) checkSheetCredentials(config);
  const loaded = await loadSource(spec, config);
  for (const skip of loaded.skipped) process.stderr.write(`skipped: ${skip.message}\n`);
  refuseEmptySource(spec, loaded);
  if (!flags.force) await skipAlreadyProcessed(runs, loaded);
  // No run is created for a list with nothing left to do (exit 0: the source is done).
  const idle = nothingToDo(loaded);
  if (idle) {
    process.stdout.write(`${idle.message}\n`);
    return {};
  }
  const budgetMicros = usdToMicros(flags.budget ?? config.BUDGET_USD);
  const estimate = await preflightRun(
    { redis, config, queue },
    { loaded, budgetMicros, noCache: !flags.cache, allowPartial: flags.dryRun === true || flags.allowPartial === true, refuseDuringCooldown: false },
  );
  if (flags.dryRun) {
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...estimate, budgetMicros, skippedRows: loaded.skipped.length }, null, 2)}\n`);
    else process.stdout.write(`${formatEstimate(estimate, budgetMicros)}\n(dry run: nothing enqueued)\n`);
    return {};
  }
  const runId = flags.run ?? newRunId();
  const outcome = await enqueueRun({ runs, ledger, queue }, { runId, loaded, budgetMicros, attempts: config.JOB_ATTEMPTS, retention, noCache: !flags.cache });
  if (outcome.kind === 'nothing_to_do') {
    process.stdout.write(`${outcome.message}\n`);
    return {};
  }
  const skipped = `${loaded.skipped.length} rows skipped`;
  if (outcome.added < outcome.enqueued) {
    // The run already held some of these brands: their jobs were queued by an earlier enqueue.
    process.stdout.write(`run ${runId}: ${outcome.added} new, ${outcome.enqueued - outcome.added} already queued (run total ${outcome.run.total}), ${skipped}\n`);
  } else {
    process.stdout.write(`run ${runId}: ${outcome.enqueued} brands enqueued, ${skipped}\n`);
  }
  return { runId };
}
