import type { Config } from '@brandq/config';
import { BadInputError } from '@brandq/errors';
import { CostLedger } from '@brandq/ledger';
import { DEFAULT_WEIGHT, FairScheduler, moveJob } from '@brandq/fair-share';
import type { Job } from 'bullmq';
import type { BrandJobData, BrandQueue } from '@brandq/queue';
import { brandJobId, brandJobOptions, type RetentionOptions } from '@brandq/queue';
import { defaultRecipe, recipeFingerprint, type Recipe } from '@brandq/recipe';
import { RunStore, type RunMeta, type RunStatus } from '@brandq/runs';
import type { RunServiceDeps } from './create-run.js';
import { sourceKeyFor, type SourceSpec } from './load-source.js';
import { preflightRun } from './preflight-run.js';

export interface RequeueOptions {
  retryFailed: boolean;
  /** With `retryFailed`, reopen only these failed brands (a failure group); the others stay failed. Default: every failed brand. */
  retryKeys?: ReadonlySet<string> | undefined;
  attempts: number;
  retention: RetentionOptions;
  /** A new budget for the run (`--resume --budget`), replacing the old one. */
  budgetMicros?: number | undefined;
  /** Reopen only a run in one of these statuses, checked as it reopens (default: any). */
  from?: readonly RunStatus[] | undefined;
}

export interface Requeued {
  requeued: number;
  reopened: number;
  /** The run's status after the resume: running, or completed when no brand is open; when refused, the status it was in. */
  status: RunStatus;
  /** The run was not in a status it may be reopened from: nothing was reopened or queued. */
  refused?: true;
  /** The ledger's budget epoch of the new budget, when one was given. */
  budgetEpoch?: number;
}

/**
 * Puts every unfinished brand of a run back in the queue: brands with a result or a final
 * failure are skipped, held (delayed) jobs are promoted, missing jobs are re-added with
 * their deterministic ids. With `retryFailed`, failed brands (all, or those in `retryKeys`)
 * are reopened first.
 *
 * A new budget is set before the run reopens: setting it bumps the ledger's budget epoch,
 * so a worker's refusal computed under the old budget (and arriving late) no longer
 * matches and cannot hold the run again (RunStore.markBudgetExhausted). Reopening first
 * would leave a window where such a refusal holds the freshly resumed run. Two concurrent
 * resumes both end with the run reopened, under the budget whose epoch is the higher.
 */
export async function requeueRun(deps: { runs: RunStore; queue: BrandQueue; ledger: CostLedger; scheduler: FairScheduler }, runId: string, opts: RequeueOptions): Promise<Requeued> {
  const { runs, queue, ledger, scheduler } = deps;
  const budgetEpoch = opts.budgetMicros === undefined ? undefined : await ledger.setBudget(runId, opts.budgetMicros);
  const failedKeys: string[] = [];
  for await (const f of runs.failures(runId)) failedKeys.push(f.key);
  const reopenKeys = opts.retryFailed ? failedKeys.filter((key) => opts.retryKeys?.has(key) ?? true) : [];
  const { reopened, status, refused } = await runs.reopen(runId, reopenKeys, opts.from);
  if (refused) return { requeued: 0, reopened: 0, status, refused, ...(budgetEpoch === undefined ? {} : { budgetEpoch }) };
  const reopening = new Set(reopenKeys);
  const finished = new Set(failedKeys.filter((key) => !reopening.has(key)));
  for await (const r of runs.results(runId)) finished.add(r.key);

  const options = brandJobOptions(opts.attempts, opts.retention);
  const open: BrandJobData[] = [];
  for await (const brand of runs.brands(runId)) if (!finished.has(brand.key)) open.push(brand);
  open.sort((a, b) => a.rowNumber - b.rowNumber);
  // The run takes its place from the queue's present: credit banked while it was held
  // would let it take every free slot of the fleet until its old tags were used up.
  // First where each brand's job is: a running job holds no place in the queue, so only the
  // others take one (tagging it would push the run's queued jobs back by as many places).
  type Placed = { brand: BrandJobData; job?: Job; delayed?: boolean };
  const toPlace: Placed[] = [];
  let running = 0;
  for (const brand of open) {
    const job = await queue.getJob(brandJobId(runId, brand.key));
    const state = job ? await job.getState() : 'missing';
    if (job && (state === 'failed' || state === 'completed')) await job.remove();
    if (state === 'active') running++;
    else if (job && state !== 'failed' && state !== 'completed') toPlace.push({ brand, job, delayed: state === 'delayed' });
    else toPlace.push({ brand });
  }
  const meta = await runs.getRun(runId);
  const priorities = await scheduler.restartPriorities(runId, toPlace.length, meta?.weight ?? DEFAULT_WEIGHT);
  const batch: Parameters<BrandQueue['addBulk']>[0] = [];
  for (const [i, { brand, job, delayed }] of toPlace.entries()) {
    const priority = priorities[i] as number;
    if (job) {
      // The new place first: a promoted job queues at the priority it holds.
      if ((await moveJob(job, priority)) && delayed) await job.promote().catch(() => undefined);
    } else batch.push({ name: 'brand', data: brand, opts: { ...options, jobId: brandJobId(runId, brand.key), priority } });
  }
  for (let i = 0; i < batch.length; i += 500) await queue.addBulk(batch.slice(i, i + 500));
  return { requeued: toPlace.length + running, reopened, status, ...(budgetEpoch === undefined ? {} : { budgetEpoch }) };
}

/** How a requeue adds jobs, from the config: the CLI's resume and the board's controls alike. */
export function requeueOptionsOf(config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_KEEP_COMPLETED' | 'JOB_KEEP_FAILED'>): Pick<RequeueOptions, 'attempts' | 'retention'> {
  return { attempts: config.JOB_ATTEMPTS, retention: { keepCompleted: config.JOB_KEEP_COMPLETED, keepFailed: config.JOB_KEEP_FAILED } };
}

/** Brands of a run a recipe switched to on resume is checked on. */
const SWITCH_SAMPLE = 100;

export interface ResumeRunRequest {
  /** The run; else the latest run of `source`. */
  runId?: string | undefined;
  source?: Pick<SourceSpec, 'csv' | 'sheet' | 'range'> | undefined;
  retryFailed: boolean;
  budgetMicros?: number | undefined;
  /** The recipe the caller gave, if any: it must be the run's own, unless `force` switches the run to it. */
  recipe?: Recipe | undefined;
  force: boolean;
}

export interface RunResumed extends Requeued {
  runId: string;
  /** The run as it was before the resume. */
  previous: RunMeta;
  spentMicros: number;
}

/**
 * Resuming a run (or retrying its failed brands), the one way the CLI and the board do it:
 * find the run, keep its stored recipe (a different one is refused unless forced, and then
 * replaces it for the brands still to do), then requeue.
 */
export async function resumeRun(deps: RunServiceDeps, request: ResumeRunRequest): Promise<RunResumed> {
  const { redis, queue, config } = deps;
  const runs = new RunStore(redis, { retentionDays: config.RUN_RETENTION_DAYS });
  const ledger = new CostLedger(redis);
  const runId = request.runId ?? (request.source ? await runs.latestRunForSource(sourceKeyFor(request.source)) : undefined);
  if (!runId) throw new BadInputError(`no earlier run${request.source ? ` of ${sourceKeyFor(request.source)}` : ''} to resume`);
  const previous = await runs.getRun(runId);
  if (!previous) throw new BadInputError(`run ${runId} not found`, { details: { runId } });
  await runs.indexRun(previous);
  if (request.recipe && recipeFingerprint(request.recipe) !== (previous.recipeFingerprint ?? recipeFingerprint(defaultRecipe()))) {
    if (!request.force) {
      throw new BadInputError(
        `run ${runId} follows recipe "${previous.recipeName ?? defaultRecipe().name}", not the one given ("${request.recipe.name}"): resume without --recipe to keep the run's own, or add --force to switch the brands still to do to it`,
        { details: { runId } },
      );
    }
    // The new recipe passes the same guard as a new run's: every model priced, every step
    // able to fit the token limit (checked on a sample of the run's own brands).
    const sample = [];
    for await (const brand of runs.brands(runId)) {
      sample.push(brand);
      if (sample.length >= SWITCH_SAMPLE) break;
    }
    await preflightRun(
      { redis, config, queue },
      { loaded: { source: previous.source, sourceKey: previous.sourceKey, brands: sample, skipped: [] }, recipe: request.recipe, budgetMicros: 0, noCache: true, allowPartial: true, refuseDuringCooldown: false },
    );
    await runs.createOrExtendRun({ id: runId, source: previous.source, sourceKey: previous.sourceKey, brands: [], skipped: [], recipe: request.recipe, replaceRecipe: true });
  }
  const { spentMicros } = await ledger.snapshot(runId);
  const requeued = await requeueRun({ runs, queue, ledger, scheduler: new FairScheduler(redis, queue) }, runId, { ...requeueOptionsOf(config), retryFailed: request.retryFailed, budgetMicros: request.budgetMicros });
  return { ...requeued, runId, previous, spentMicros };
}
