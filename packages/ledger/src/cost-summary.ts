import type { LedgerSnapshot } from './cost-ledger.js';
import { microsToUsd } from './pricing.js';

const usd = (micros: number) => `$${microsToUsd(micros).toFixed(2)}`;
const count = (n: number) => n.toLocaleString('en-US');

/** The cost summary in the original tool's format. `llmLabel` is e.g. `OpenRouter` or `OpenAI`. */
export function formatCostSummary(snapshot: LedgerSnapshot, llmLabel: string): string {
  const { tavily, llm } = snapshot.providers;
  const lines = [
    '[COST SUMMARY]',
    `  Tavily: ${usd(tavily.costMicros)} (${count(tavily.calls)} calls)`,
    `  ${llmLabel}: ${usd(llm.costMicros)} (${count(llm.calls)} calls)`,
    `    - Input tokens: ${count(llm.inputTokens)}`,
    `    - Output tokens: ${count(llm.outputTokens)}`,
    `  Total: ${usd(snapshot.spentMicros)}`,
  ];
  const cached = tavily.cached + llm.cached;
  if (cached > 0) lines.push(`  Cached: ${count(cached)} answers, saved ${usd(tavily.savedMicros + llm.savedMicros)}`);
  if (snapshot.budgetMicros > 0) {
    const pct = (100 * snapshot.spentMicros) / snapshot.budgetMicros;
    lines.push(`  Budget: ${usd(snapshot.spentMicros)} / ${usd(snapshot.budgetMicros)} (${pct.toFixed(1)}%)`);
    lines.push(`  Remaining: ${usd(Math.max(0, snapshot.budgetMicros - snapshot.spentMicros))}`);
  }
  return lines.join('\n');
}

export function llmLabelFor(baseUrl: string): string {
  return /openrouter\.ai/i.test(baseUrl) ? 'OpenRouter' : 'OpenAI';
}
