/**
 * The limits the demo's workers run under against the fakes: far from binding, so what a
 * run shows is its own pace (and a tier's own waits), not the limiter's. bench/tiers.ts
 * measures under the same ones.
 */
export const DEMO_LIMITS = {
  OPENAI_RPM_LIMIT: '600',
  OPENAI_RPM_BURST: '20',
  OPENAI_TPM_LIMIT: '400000',
  OPENAI_MAX_CONCURRENCY: '6',
  TAVILY_RPM_LIMIT: '1000',
  TAVILY_RPM_BURST: '20',
};
