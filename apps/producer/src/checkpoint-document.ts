import type { LedgerSnapshot } from '@brandq/ledger';
import { microsToUsd } from '@brandq/ledger';
import type { RunStore } from '@brandq/runs';

/** A run in the checkpoint shape the original single-process tool wrote. */
export async function checkpointDocument(runs: RunStore, runId: string, ledger: LedgerSnapshot, reason: string) {
  const run = await runs.getRun(runId);
  if (!run) throw new Error(`run ${runId} not found`);
  const success = [];
  // Flat, as the original tool wrote a brand's result: the recipe's fields beside the brand.
  for await (const { fields, ...brand } of runs.results(runId)) success.push({ ...fields, ...brand });
  const failed = [];
  for await (const f of runs.failures(runId)) failed.push(f);
  const skipped = [];
  for await (const s of runs.skipped(runId)) skipped.push(s);
  const byRow = (a: { rowNumber: number }, b: { rowNumber: number }) => a.rowNumber - b.rowNumber;
  const usd = (micros: number) => Number(microsToUsd(micros).toFixed(6));
  return {
    timestamp: new Date().toISOString(),
    reason,
    run_id: runId,
    status: run.status,
    processed_count: run.succeeded + run.failed,
    total: run.total,
    results: { success: success.sort(byRow), failed: failed.sort(byRow), skipped: skipped.sort(byRow) },
    cost_summary: {
      total_cost: usd(ledger.spentMicros),
      tavily_cost: usd(ledger.providers.tavily.costMicros),
      openrouter_cost: usd(ledger.providers.llm.costMicros),
      tavily_calls: ledger.providers.tavily.calls,
      llm_calls: ledger.providers.llm.calls,
      input_tokens: ledger.providers.llm.inputTokens,
      output_tokens: ledger.providers.llm.outputTokens,
      budget_limit: ledger.budgetMicros > 0 ? usd(ledger.budgetMicros) : null,
      budget_remaining: ledger.budgetMicros > 0 ? usd(Math.max(0, ledger.budgetMicros - ledger.spentMicros)) : null,
    },
  };
}
