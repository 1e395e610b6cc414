import { microsToUsd } from '@brandq/ledger';
import type { RunEstimate } from './estimate-run.js';

/** The `--dry-run` report. */
export function formatEstimate(e: RunEstimate, budgetMicros: number): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const usd = (micros: number) => `$${microsToUsd(micros).toFixed(2)}`;
  const lines = [
    '[PREFLIGHT]',
    `  Brands: ${n(e.brands)} (cached: ${n(e.cachedSearches)} searches, ${n(e.cachedAnswers)} answers)`,
    `  Recipe: ${e.recipe}`,
    ...e.steps.map((s) => {
      const calls = `${n(s.paidCalls)} paid, ${n(s.cached)} cached${s.skipped > 0 ? `, ${n(s.skipped)} skipped` : ''}`;
      const usage = s.type === 'search' ? `${n(s.credits)} credits` : `${s.model} ${n(s.promptTokensPerCall)} + ${n(s.outputTokensPerCall)} tokens per call`;
      const tier = s.tier && s.tier !== 'standard' ? ` at the ${s.tier} tier (standard: ${usd(s.standardCostMicros)})` : '';
      return `    - ${s.id} (${s.type}): ${calls}; ${usage}; up to ${usd(s.costMicros)}${tier}`;
    }),
    `  Paid calls: Tavily ${n(e.paidSearches)}, LLM ${n(e.paidLlmCalls)}`,
    `  Tokens: up to ${n(e.estimatedTokens)} (${n(e.tokensPerCall)} per call at admission: prompt and output cap)`,
    `  Cost: up to ${usd(e.estimatedCostMicros)}${budgetMicros > 0 ? ` (budget ${usd(budgetMicros)})` : ''}${e.savingMicros > 0 ? `; the cheaper tiers save up to ${usd(e.savingMicros)} against standard` : ''}`,
    `  Duration: >= ${Math.ceil(e.estimatedSeconds / 60)} min at the configured limits; binding limit: ${e.binding}`,
    `  Live workers: ${e.liveWorkers}${e.liveWorkers === 0 ? ' (start some with: pnpm worker)' : ''}`,
  ];
  for (const [provider, until] of Object.entries(e.cooldowns)) lines.push(`  Cooldown: ${provider} held until ${new Date(until).toISOString()} after a 429`);
  return lines.join('\n');
}
