import { microsToUsd } from '@brandq/ledger';
import type { RunEstimate } from './estimate-run.js';

/** The `--dry-run` report. */
export function formatEstimate(e: RunEstimate, budgetMicros: number): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const lines = [
    '[PREFLIGHT]',
    `  Brands: ${n(e.brands)} (cached: ${n(e.cachedSearches)} searches, ${n(e.cachedAnswers)} answers)`,
    `  Paid calls: Tavily ${n(e.paidSearches)}, LLM ${n(e.paidLlmCalls)}`,
    `  Tokens: ~${n(e.estimatedTokens)} (${n(e.tokensPerCall)} per call, ${e.tokensPerCallSource})`,
    `  Cost: ~$${microsToUsd(e.estimatedCostMicros).toFixed(2)}${budgetMicros > 0 ? ` (budget $${microsToUsd(budgetMicros).toFixed(2)})` : ''}`,
    `  Duration: >= ${Math.ceil(e.estimatedSeconds / 60)} min at the configured limits; binding limit: ${e.binding}`,
    `  Live workers: ${e.liveWorkers}${e.liveWorkers === 0 ? ' (start some with: pnpm worker)' : ''}`,
  ];
  for (const [provider, until] of Object.entries(e.cooldowns)) lines.push(`  Cooldown: ${provider} held until ${new Date(until).toISOString()} after a 429`);
  return lines.join('\n');
}
