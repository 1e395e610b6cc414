import { DEFAULT_WEIGHT, etaSeconds, type FleetShares } from '@brandq/fair-share';
import { formatCostSummary, tierPrice, type CostLedger, type LedgerSnapshot, type ModelPrice } from '@brandq/ledger';
import type { Recipe } from '@brandq/recipe';
import type { RunMeta, RunStore } from '@brandq/runs';

/**
 * A run's part of the fleet: what it asks (its weight, its own ceiling) and what it got over
 * the last minute, with the ETA that pace gives.
 */
export interface RunFairShare {
  weight: number;
  /** Its own ceiling in calls per minute at each provider; null: only the providers' limits. */
  maxRpm: number | null;
  /** Its part of the calls the fleet's shared limiter admitted over the window (0..1). */
  measuredShare: number;
  /** Its admitted calls and finished brands over the window. */
  calls: number;
  done: number;
  windowMs: number;
  /** Seconds until its open brands are done at the pace measured; null when it does not advance (held, ended with brands left, nothing finished in the window). */
  etaSeconds: number | null;
}

/** A run as its reports show it: its state, its books, the recipe it follows and its part of the fleet. */
export interface RunReport {
  run: RunMeta;
  ledger: LedgerSnapshot;
  recipe: Recipe;
  fairShare: RunFairShare;
}

/**
 * The run's report, or undefined when there is no such run. `fleet` is the fleet's shares
 * (`new RunShares(redis).measure()`), measured once for however many runs are reported.
 */
export async function loadRunReport(deps: { runs: RunStore; ledger: CostLedger }, runId: string, fleet: FleetShares): Promise<RunReport | undefined> {
  const run = await deps.runs.getRun(runId);
  if (!run) return undefined;
  const [ledger, recipe] = await Promise.all([deps.ledger.snapshot(runId), deps.runs.getRecipe(runId)]);
  return { run, ledger, recipe, fairShare: runFairShare(run, fleet) };
}

/** The run's weight and ceiling from its meta, its measured share and the ETA at that share. */
export function runFairShare(run: RunMeta, fleet: FleetShares): RunFairShare {
  const measured = fleet.runs.get(run.id);
  // Brands not yet succeeded or failed: `total` counts the run's valid brands only, never its skipped rows.
  const open = Math.max(0, run.total - run.succeeded - run.failed);
  const eta = open === 0 ? 0 : run.status === 'running' ? etaSeconds(open, measured, fleet.windowMs) : undefined;
  return {
    weight: run.weight ?? DEFAULT_WEIGHT,
    maxRpm: run.maxRpm ?? null,
    measuredShare: measured?.share ?? 0,
    calls: measured?.calls ?? 0,
    done: measured?.done ?? 0,
    windowMs: fleet.windowMs,
    etaSeconds: eta ?? null,
  };
}

/**
 * The cost summary of a run: per provider, then per step of its recipe in the recipe's
 * order, each LLM step with its tier and, where the model's standard price is in `pricing`,
 * what its tier saved against it.
 */
export function runCostSummary(
  report: Pick<RunReport, 'ledger' | 'recipe'> & { run?: Pick<RunMeta, 'llmTier'> | undefined },
  llmLabel: string,
  pricing?: { table: Readonly<Record<string, ModelPrice>>; defaultModel: string },
): string {
  const steps = report.recipe.steps.map((step) => {
    if (step.type !== 'llm') return { id: step.id };
    const price = pricing?.table[step.model ?? pricing.defaultModel];
    return { id: step.id, tier: step.tier ?? report.run?.llmTier ?? 'standard', ...(price ? { standardPrice: tierPrice(price, 'standard') } : {}) };
  });
  return formatCostSummary(report.ledger, llmLabel, steps);
}
