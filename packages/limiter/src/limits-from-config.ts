import type { Config } from '@brandq/config';
import type { ProviderLimits } from './types.js';

/** The shared limits of each provider, from the environment users of the original know. */
export function limitsFromConfig(config: Config): Record<'llm' | 'tavily' | 'sheets', ProviderLimits> {
  const leaseMs = config.LIMITER_LEASE_SECONDS * 1000;
  const jitterCapMs = config.STAGGER_JITTER_CAP_SECONDS * 1000;
  // One slice for every provider: each enforces (or may enforce) its minute over short slices.
  const paceMs = config.LIMITER_PACE_SLICE_SECONDS * 1000;
  return {
    llm: {
      rpm: config.OPENAI_RPM_LIMIT,
      burst: config.OPENAI_RPM_BURST,
      tpm: config.OPENAI_TPM_LIMIT,
      tpmHeadroom: config.OPENAI_TPM_HEADROOM,
      tokenCounting: config.OPENAI_TOKEN_COUNTING,
      fallbackTokens: config.OPENAI_EST_TOKENS_PER_RUN,
      maxConcurrency: config.OPENAI_MAX_CONCURRENCY,
      // The original ran finalize passes one slot lower (3 -> 2).
      finalizeConcurrency: config.FINALIZE_LOWERS_CONCURRENCY ? Math.max(1, config.OPENAI_MAX_CONCURRENCY - 1) : config.OPENAI_MAX_CONCURRENCY,
      staggerMs: config.OPENAI_STAGGER_SECONDS * 1000,
      jitterCapMs,
      leaseMs,
      paceMs,
    },
    tavily: { rpm: config.TAVILY_RPM_LIMIT, burst: config.TAVILY_RPM_BURST, maxConcurrency: config.TAVILY_MAX_CONCURRENCY, jitterCapMs, leaseMs, paceMs },
    sheets: { rpm: config.SHEETS_RPM_LIMIT, burst: config.SHEETS_RPM_BURST, jitterCapMs, leaseMs, paceMs },
  };
}
