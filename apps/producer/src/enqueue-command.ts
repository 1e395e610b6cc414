import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { microsToUsd, usdToMicros, type LlmTier } from '@brandq/ledger';
import type { BrandQueue } from '@brandq/queue';
import { formatEstimate } from '@brandq/preflight';
import { defaultRecipe, loadRecipeFile, type Recipe } from '@brandq/recipe';
import { createRun, resumeRun, type SourceSpec } from '@brandq/run-service';
import { UsageError } from './usage-error.js';

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
  /** A recipe file (YAML or JSON); the default recipe when absent. */
  recipe?: string;
  /** The run's weight among the fleet's runs (`--weight`) and its own ceiling in calls per minute (`--max-rpm`). */
  weight?: number;
  maxRpm?: number;
  /** The run's LLM tier (`--llm-tier`) and how long a flex call refused for capacity waits before it goes standard (`--flex-fallback-after`, ms). */
  llmTier?: LlmTier;
  flexFallbackAfter?: number;
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
  if (flags.resume && flags.force && !flags.recipe) {
    throw new UsageError('--resume and --force conflict: --resume skips processed brands, --force reprocesses them (with --recipe, --force switches the run to that recipe)');
  }
  if (flags.retryFailed && !flags.run) throw new UsageError('--retry-failed needs --run <id>');
  const continuing = flags.resume === true || flags.retryFailed === true;
  if (!continuing && Boolean(flags.csv) === Boolean(flags.sheet)) throw new UsageError('give exactly one of --csv or --sheet');
  if (flags.resume && !flags.run && !flags.csv && !flags.sheet) throw new UsageError('--resume needs the source (--csv or --sheet) or --run');
  if (flags.json && !flags.dryRun) throw new UsageError('--json goes with --dry-run (the preflight estimate)');
  if (continuing && (flags.weight !== undefined || flags.maxRpm !== undefined)) {
    throw new UsageError(`--weight and --max-rpm go with a new run or more brands for one; a run that goes on keeps its own: change it with brandq runs set <run-id>`);
  }
  if (continuing && (flags.llmTier !== undefined || flags.flexFallbackAfter !== undefined)) {
    throw new UsageError('--llm-tier and --flex-fallback-after go with a new run or more brands for one; a run that goes on keeps its own tier');
  }
}

function sourceSpec(flags: EnqueueFlags): SourceSpec {
  return { csv: flags.csv, sheet: flags.sheet, range: flags.range, column: flags.column, resultColumn: flags.resultColumn, limit: flags.limit };
}

/** The recipe a command names (`--recipe <file>`), else the default one. */
export async function recipeOf(flags: { recipe?: string | undefined }): Promise<Recipe> {
  return flags.recipe ? loadRecipeFile(flags.recipe) : defaultRecipe();
}

/** What a run asked of the fleet, as the producer's lines say it. */
export function shareWords(share: { weight?: number | undefined; maxRpm?: number | null | undefined }): string {
  const words: string[] = [];
  if (share.weight !== undefined) words.push(`weight ${share.weight}`);
  if (share.maxRpm !== undefined) words.push(share.maxRpm === null ? 'no ceiling of its own' : `at most ${share.maxRpm} calls/min at each provider`);
  return words.join(', ');
}

/**
 * `brandq enqueue` without the following: resume, retry the failed brands, or create the
 * run (the run service's use cases); this only renders what they did. Says what it did on
 * stdout (skipped rows on stderr); with --dry-run --json, stdout is the estimate as one
 * JSON document.
 */
export async function enqueueFromFlags(deps: EnqueueDeps, flags: EnqueueFlags): Promise<EnqueueOutcome> {
  const { config } = deps;
  const spec = sourceSpec(flags);
  const retryFailed = flags.retryFailed === true;
  if (flags.resume === true || retryFailed) {
    const resumed = await resumeRun(deps, {
      runId: flags.run,
      source: spec,
      retryFailed,
      budgetMicros: flags.budget === undefined ? undefined : usdToMicros(flags.budget),
      recipe: flags.recipe ? await recipeOf(flags) : undefined,
      force: flags.force === true,
    });
    const { previous } = resumed;
    process.stdout.write(
      `${retryFailed ? 'retrying failed brands of' : 'resuming'} run ${resumed.runId}: processed ${previous.succeeded + previous.failed}/${previous.total} ` +
        `(success ${previous.succeeded}, failed ${previous.failed}), cost so far $${microsToUsd(resumed.spentMicros).toFixed(2)}` +
        `${flags.budget !== undefined ? `, new budget $${flags.budget.toFixed(2)}` : ''}; ${resumed.requeued} brands queued${retryFailed ? ` (${resumed.reopened} reopened)` : ''}\n`,
    );
    return { runId: resumed.runId };
  }

  const recipe = await recipeOf(flags);
  const budgetMicros = usdToMicros(flags.budget ?? config.BUDGET_USD);
  const outcome = await createRun(deps, {
    source: spec,
    runId: flags.run,
    budgetMicros,
    recipe,
    noCache: !flags.cache,
    force: flags.force === true,
    allowPartial: flags.allowPartial === true,
    dryRun: flags.dryRun === true,
    refuseDuringCooldown: false,
    // Only the fields given: an existing run keeps what is left out (a key holding undefined would not).
    share: { ...(flags.weight === undefined ? {} : { weight: flags.weight }), ...(flags.maxRpm === undefined ? {} : { maxRpm: flags.maxRpm }) },
    llmTier: flags.llmTier,
    flexFallbackAfterMs: flags.flexFallbackAfter,
  });
  for (const skip of outcome.skipped) process.stderr.write(`skipped: ${skip.message}\n`);
  // No run is created for a list with nothing left to do (exit 0: the source is done).
  if (outcome.kind === 'nothing_to_do') {
    process.stdout.write(`${outcome.message}\n`);
    return {};
  }
  if (outcome.kind === 'estimated') {
    const { estimate } = outcome;
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...estimate, budgetMicros, skippedRows: outcome.skipped.length }, null, 2)}\n`);
    else process.stdout.write(`${formatEstimate(estimate, budgetMicros)}\n(dry run: nothing enqueued)\n`);
    return {};
  }
  const skipped = `${outcome.skipped.length} rows skipped`;
  if (outcome.added < outcome.enqueued) {
    // The run already held some of these brands: their jobs were queued by an earlier enqueue.
    process.stdout.write(`run ${outcome.runId}: ${outcome.added} new, ${outcome.enqueued - outcome.added} already queued (run total ${outcome.total}), ${skipped}\n`);
  } else {
    process.stdout.write(`run ${outcome.runId}: ${outcome.enqueued} brands enqueued, ${skipped}\n`);
  }
  if (flags.weight !== undefined || flags.maxRpm !== undefined) process.stdout.write(`run ${outcome.runId}: ${shareWords(flags)}\n`);
  return { runId: outcome.runId };
}
