import { formatCostSummary, type CostLedger, type LedgerSnapshot } from '@brandq/ledger';
import type { Recipe } from '@brandq/recipe';
import type { RunMeta, RunStore } from '@brandq/runs';

/** A run as its reports show it: its state, its books and the recipe it follows. */
export interface RunReport {
  run: RunMeta;
  ledger: LedgerSnapshot;
  recipe: Recipe;
}

/** The run's report, or undefined when there is no such run. */
export async function loadRunReport(deps: { runs: RunStore; ledger: CostLedger }, runId: string): Promise<RunReport | undefined> {
  const run = await deps.runs.getRun(runId);
  if (!run) return undefined;
  const [ledger, recipe] = await Promise.all([deps.ledger.snapshot(runId), deps.runs.getRecipe(runId)]);
  return { run, ledger, recipe };
}

/** The cost summary of a run: per provider, then per step of its recipe in the recipe's order. */
export function runCostSummary(report: Pick<RunReport, 'ledger' | 'recipe'>, llmLabel: string): string {
  return formatCostSummary(report.ledger, llmLabel, report.recipe.steps.map((s) => s.id));
}
