import { DEFAULT_WEIGHT, FairScheduler } from '@brandq/fair-share';
import { CostLedger, usdToMicros, type LedgerSnapshot } from '@brandq/ledger';
import { brandJobId, type BrandQueue } from '@brandq/queue';
import { RunStore, type RunAction, type RunHistoryEntry, type RunMeta, type RunStatus } from '@brandq/runs';
import type { RunServiceDeps } from './create-run.js';
import { requeueOptionsOf, requeueRun } from './resume-run.js';
import { failureGroupId } from './run-detail.js';

/** What every control answers: the run after it, and its latest history (the entry just written first). */
export interface RunControlled {
  run: RunMeta;
  history: RunHistoryEntry[];
}

/**
 * Why a control did not apply (nothing was changed): the run does not exist, the budget is
 * not one the ledger can keep, the run's status does not allow it, a run held for its budget
 * would only stop again, or the failure group holds no brand.
 */
export type RunControlRefusal = 'RUN_NOT_FOUND' | 'INVALID_BUDGET' | 'RUN_STATE' | 'BUDGET_STILL_EXHAUSTED' | 'NO_FAILURES';

export class RunControlRefused extends Error {
  constructor(
    readonly code: RunControlRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'RunControlRefused';
  }
}

/** A group of failures, as the run's page groups them: by kind and reason text; neither = every failure. */
/** Which failures to retry: a group by its id (as the run's page lists them), or by kind and exact reason; none = all. */
export interface FailureGroupSelector {
  group?: string | undefined;
  kind?: string | undefined;
  reason?: string | undefined;
}

/** What an operator can do to a run; `by` is who did it, recorded in the run's history. */
export interface RunControls {
  /** running -> paused: workers park its jobs (delayed) instead of taking them; calls in flight finish. */
  pause(runId: string, by: string): Promise<RunControlled>;
  /** paused, or held for its budget while the budget leaves room -> running; its parked jobs are promoted. */
  resume(runId: string, by: string): Promise<RunControlled>;
  /** -> cancelled: its queued jobs are removed; active ones finish and record nothing more. */
  cancel(runId: string, by: string): Promise<RunControlled>;
  /** Sets the budget; a run held for its budget resumes when the new one is higher and leaves room. */
  budget(runId: string, budgetUsd: number, by: string): Promise<RunControlled>;
  /** Reopens and requeues the failed brands of a group (or all) of a running or completed run. */
  retry(runId: string, group: FailureGroupSelector, by: string): Promise<RunControlled>;
  /**
   * Sets the run's weight and/or its own ceiling (`maxRpm: null` lifts it). A new weight
   * re-tags the run's queued jobs from the queue's present, so it applies to the next free
   * worker slot, not after the jobs already queued.
   */
  share(runId: string, share: { weight?: number; maxRpm?: number | null }, by: string): Promise<RunControlled>;
}

/** History entries a control answers with. */
const HISTORY_SHOWN = 50;
/** Job states that are still queued: a cancel removes these; an active job holds a worker's lock and finishes. */
const QUEUED_STATES: ReadonlySet<string> = new Set(['waiting', 'delayed', 'prioritized']);
/** Jobs looked up and removed at once by a cancel. */
const CANCEL_BATCH = 200;

const STATUS_WORDS: Record<RunStatus, string> = {
  running: 'running',
  paused: 'paused',
  budget_exhausted: 'held for its budget',
  completed: 'completed',
  cancelled: 'cancelled',
};

/**
 * A budget in USD as the ledger keeps it, whole micro-dollars: one that rounds to 0 would
 * mean "unlimited", one past the safe integers cannot be stored.
 */
export function budgetMicrosOf(budgetUsd: number): number {
  const micros = usdToMicros(budgetUsd);
  if (!(micros >= 1) || !Number.isSafeInteger(micros)) throw new RunControlRefused('INVALID_BUDGET', 'expected a budget in USD of at least 0.000001 and below 9e9');
  return micros;
}

/**
 * The run controls, the one way the board (and any other client) pauses, resumes, cancels,
 * re-budgets and retries a run. Each checks the run's status, changes it, and records who
 * did what in the run's history.
 */
export function runControls(deps: RunServiceDeps): RunControls {
  const runs = new RunStore(deps.redis, { retentionDays: deps.config.RUN_RETENTION_DAYS });
  const ledger = new CostLedger(deps.redis);
  const { queue } = deps;
  const scheduler = new FairScheduler(deps.redis, queue);
  /** Requeues the run if it is still in one of `from` when it is reopened (checked in that same step); else refused as it is now. */
  const requeue = async (runId: string, from: RunStatus[], options: { budgetMicros?: number; retryKeys?: ReadonlySet<string> }) => {
    const requeued = await requeueRun({ runs, queue, ledger, scheduler }, runId, { ...requeueOptionsOf(deps.config), retryFailed: options.retryKeys !== undefined, ...options, from });
    if (requeued.refused) return refuseFor(runId, 'another control (or a worker) changed it meanwhile');
    return requeued;
  };

  async function existing(runId: string): Promise<RunMeta> {
    const run = await runs.getRun(runId);
    if (!run) throw new RunControlRefused('RUN_NOT_FOUND', `run ${runId} not found`);
    return run;
  }

  /** Refuses the control for the run as it is now (re-read: a refused transition may have met a run a worker just changed). */
  async function refuseFor(runId: string, why: string): Promise<never> {
    const run = await existing(runId);
    throw new RunControlRefused('RUN_STATE', `run ${runId} is ${STATUS_WORDS[run.status]}: ${why}`);
  }

  async function recorded(runId: string, action: RunAction, by: string, details: Record<string, unknown>): Promise<RunControlled> {
    await runs.appendHistory(runId, { at: new Date().toISOString(), action, by, details });
    return { run: await existing(runId), history: await runs.history(runId, HISTORY_SHOWN) };
  }

  return {
    async share(runId, share, by) {
      const run = await existing(runId);
      if (run.status === 'completed' || run.status === 'cancelled') return refuseFor(runId, 'only a run that still has brands to do takes a share');
      if (!(await runs.setShare(runId, share))) throw new RunControlRefused('RUN_NOT_FOUND', `run ${runId} not found`);
      const weight = share.weight ?? run.weight ?? DEFAULT_WEIGHT;
      const retagged = share.weight === undefined ? 0 : await scheduler.retag(runId, (await runs.pendingKeys(runId)).map((key) => brandJobId(runId, key)), weight);
      return recorded(runId, 'share', by, { from: { weight: run.weight ?? DEFAULT_WEIGHT, maxRpm: run.maxRpm ?? null }, weight, maxRpm: share.maxRpm === undefined ? (run.maxRpm ?? null) : share.maxRpm, retagged });
    },

    async pause(runId, by) {
      if (!(await runs.transitionStatus(runId, ['running'], 'paused', `paused by ${by}`))) return refuseFor(runId, 'only a running run can be paused');
      return recorded(runId, 'pause', by, {});
    },

    async resume(runId, by) {
      const run = await existing(runId);
      if (run.status === 'budget_exhausted') {
        if (!leavesRoom(await ledger.snapshot(runId))) {
          throw new RunControlRefused('BUDGET_STILL_EXHAUSTED', `run ${runId} is held for its budget, which is spent: raise the budget to resume it`);
        }
      } else if (run.status !== 'paused') {
        return refuseFor(runId, 'only a paused run, or one held for its budget, can be resumed');
      }
      const { requeued, status } = await requeue(runId, ['paused', 'budget_exhausted'], {});
      return recorded(runId, 'resume', by, { from: run.status, status, requeued });
    },

    async cancel(runId, by) {
      const run = await existing(runId);
      // The status first: a job a worker takes from here on returns without calling anyone.
      if (!(await runs.transitionStatus(runId, ['running', 'paused', 'budget_exhausted'], 'cancelled', `cancelled by ${by}`))) {
        return refuseFor(runId, 'only a running or held run can be cancelled');
      }
      const { removed, active } = await removeQueuedJobs(queue, runs, runId);
      return recorded(runId, 'cancel', by, { from: run.status, removedJobs: removed, activeJobs: active });
    },

    async budget(runId, budgetUsd, by) {
      const budgetMicros = budgetMicrosOf(budgetUsd);
      const run = await existing(runId);
      if (run.status === 'cancelled') return refuseFor(runId, 'a cancelled run spends nothing more');
      const before = await ledger.snapshot(runId);
      // A budget no higher than the one the run ran out under cannot pay for the call it refused.
      const raised = before.budgetMicros > 0 && budgetMicros > before.budgetMicros;
      const resumes = run.status === 'budget_exhausted' && raised && leavesRoom({ ...before, budgetMicros });
      const details: Record<string, unknown> = { budgetMicros, previousBudgetMicros: before.budgetMicros, resumed: resumes };
      if (resumes) details.requeued = (await requeue(runId, ['budget_exhausted'], { budgetMicros })).requeued;
      else await ledger.setBudget(runId, budgetMicros);
      return recorded(runId, 'budget', by, details);
    },

    async retry(runId, group, by) {
      const run = await existing(runId);
      // Reopening puts the run back to running: a held run is resumed first, on purpose.
      if (run.status !== 'running' && run.status !== 'completed') return refuseFor(runId, run.status === 'cancelled' ? 'a cancelled run retries nothing' : 'resume it first, then retry');
      const keys = new Set<string>();
      for await (const failure of runs.failures(runId)) {
        const inGroup = group.group === undefined || failureGroupId(failure.kind, failure.reason) === group.group;
        if (inGroup && (group.kind === undefined || failure.kind === group.kind) && (group.reason === undefined || failure.reason === group.reason)) keys.add(failure.key);
      }
      if (keys.size === 0) throw new RunControlRefused('NO_FAILURES', `run ${runId} has no failed brands${describeGroup(group)}`);
      const { reopened, requeued, status } = await requeue(runId, ['running', 'completed'], { retryKeys: keys });
      return recorded(runId, 'retry', by, { ...group, reopened, requeued, status });
    },
  };
}

/** True while the budget leaves room beyond what is spent, unconfirmed or reserved (0 = no budget, room without end). */
function leavesRoom(ledger: Pick<LedgerSnapshot, 'budgetMicros' | 'spentMicros' | 'unconfirmedMicros' | 'reservedMicros'>): boolean {
  return ledger.budgetMicros === 0 || ledger.budgetMicros > ledger.spentMicros + ledger.unconfirmedMicros + ledger.reservedMicros;
}

function describeGroup(group: FailureGroupSelector): string {
  const parts = [
    group.group === undefined ? '' : `in group ${group.group}`,
    group.kind === undefined ? '' : `of kind "${group.kind}"`,
    group.reason === undefined ? '' : `with reason "${group.reason}"`,
  ].filter(Boolean);
  return parts.length === 0 ? '' : ` ${parts.join(' ')}`;
}

/**
 * Removes the run's queued jobs (by their deterministic ids, over the run's brands). A job
 * that is active, or that a worker takes between the look and the removal (BullMQ does not
 * remove a locked job), stays and finishes; `active` counts those.
 */
async function removeQueuedJobs(queue: BrandQueue, runs: RunStore, runId: string): Promise<{ removed: number; active: number }> {
  const counts = { removed: 0, active: 0 };
  const removeBatch = async (ids: string[]) => {
    const outcomes = await Promise.all(
      ids.map(async (id) => {
        const state = await queue.getJobState(id);
        if (state === 'active') return 'active';
        if (!QUEUED_STATES.has(state)) return 'gone';
        return (await queue.remove(id)) === 1 ? 'removed' : 'active';
      }),
    );
    for (const outcome of outcomes) if (outcome !== 'gone') counts[outcome]++;
  };
  let batch: string[] = [];
  for await (const brand of runs.brands(runId)) {
    batch.push(brandJobId(runId, brand.key));
    if (batch.length === CANCEL_BATCH) {
      await removeBatch(batch);
      batch = [];
    }
  }
  await removeBatch(batch);
  return counts;
}
