import type { LedgerSnapshot } from './cost-ledger.js';
import { llmCostMicros, microsToUsd, type LlmTier, type TokenPrice } from './pricing.js';

const usd = (micros: number) => `$${microsToUsd(micros).toFixed(2)}`;
const count = (n: number) => n.toLocaleString('en-US');

/**
 * The cost summary in the original tool's format. `llmLabel` is e.g. `OpenRouter` or `OpenAI`.
 * Unconfirmed spend (calls that may have been billed) and overruns (costs above their
 * reservation) get a line each when there are any; the total stays the confirmed spend.
 */
/** A recipe step as the summary lists it: its id and, for an LLM step, its tier and the standard price its saving is measured against. */
export interface SummaryStep {
  id: string;
  tier?: LlmTier;
  standardPrice?: TokenPrice;
}

export function formatCostSummary(snapshot: LedgerSnapshot, llmLabel: string, summarySteps: readonly (string | SummaryStep)[] = []): string {
  const described = summarySteps.map((s) => (typeof s === 'string' ? { id: s } : s));
  const stepOrder = described.map((s) => s.id);
  const { tavily, llm } = snapshot.providers;
  const lines = [
    '[COST SUMMARY]',
    `  Tavily: ${usd(tavily.costMicros)} (${count(tavily.calls)} calls)`,
    `  ${llmLabel}: ${usd(llm.costMicros)} (${count(llm.calls)} calls)`,
    `    - Input tokens: ${count(llm.inputTokens)}`,
    `    - Output tokens: ${count(llm.outputTokens)}`,
    `  Total: ${usd(snapshot.spentMicros)}`,
  ];
  if (snapshot.unconfirmedMicros > 0) {
    const calls = tavily.unconfirmedCalls + llm.unconfirmedCalls + snapshot.providers.sheets.unconfirmedCalls;
    lines.push(`  Unconfirmed: ${usd(snapshot.unconfirmedMicros)} (${count(calls)} calls that may have been billed, not in the total)`);
  }
  if (snapshot.overrunMicros > 0) {
    const overrunBy = ([['Tavily', tavily], [llmLabel, llm]] as const)
      .filter(([, totals]) => totals.overrunMicros > 0)
      // No ratio is kept for a cost billed against a reservation of 0 (an unpriced model).
      .map(([label, totals]) => `${label} billed ${totals.priceRatio > 0 ? `up to ${totals.priceRatio.toFixed(2)}x the configured price` : 'calls priced at 0'}`);
    lines.push(`  Overrun: ${usd(snapshot.overrunMicros)} above reservations (${overrunBy.join('; ')})`);
  }
  // Per recipe step, in the recipe's order (steps the ledger knows but the order does not, last).
  const stepIds = [...stepOrder.filter((id) => id in snapshot.steps), ...Object.keys(snapshot.steps).filter((id) => !stepOrder.includes(id))];
  if (stepIds.length > 0) lines.push('  By step:');
  let savedByTiers = 0;
  for (const id of stepIds) {
    const step = snapshot.steps[id]!;
    const tokens = step.inputTokens + step.outputTokens > 0 ? `, ${count(step.inputTokens)} in / ${count(step.outputTokens)} out tokens` : '';
    const credits = step.credits > 0 ? `, ${count(step.credits)} credits` : '';
    const cachedStep = step.cached > 0 ? `, ${count(step.cached)} cached` : '';
    const about = described.find((s) => s.id === id);
    let tier = '';
    if (about?.tier && about.tier !== 'standard') {
      // What the same tokens would have cost at the standard price, less what they did.
      const saved = about.standardPrice ? Math.max(0, llmCostMicros(about.standardPrice, step.inputTokens, step.outputTokens) - step.costMicros) : undefined;
      if (saved !== undefined) savedByTiers += saved;
      tier = `; ${about.tier} tier${saved === undefined ? '' : `, saved ${usd(saved)} against standard`}`;
    }
    lines.push(`    - ${id}: ${usd(step.costMicros)} (${count(step.calls)} calls${tokens}${credits}${cachedStep}${tier})`);
  }
  if (savedByTiers > 0) lines.push(`  Cheaper tiers: saved ${usd(savedByTiers)} against the standard price`);
  const cached = tavily.cached + llm.cached;
  if (cached > 0) lines.push(`  Cached: ${count(cached)} answers, saved ${usd(tavily.savedMicros + llm.savedMicros)}`);
  if (snapshot.budgetMicros > 0) {
    const used = snapshot.spentMicros + snapshot.unconfirmedMicros;
    const pct = (100 * used) / snapshot.budgetMicros;
    const note = snapshot.unconfirmedMicros > 0 ? ' incl. unconfirmed' : '';
    lines.push(`  Budget: ${usd(used)} / ${usd(snapshot.budgetMicros)} (${pct.toFixed(1)}%)${note}`);
    lines.push(`  Remaining: ${usd(Math.max(0, snapshot.budgetMicros - used))}`);
  }
  return lines.join('\n');
}

export function llmLabelFor(baseUrl: string): string {
  return /openrouter\.ai/i.test(baseUrl) ? 'OpenRouter' : 'OpenAI';
}
