import type { BrandqMetrics } from './brandq-metrics.js';

interface BookedUsage {
  costMicros: number;
  inputTokens?: number;
  outputTokens?: number;
}

/** The pipeline's observer hooks, feeding the worker's Prometheus metrics. */
export function pipelineMetrics(metrics: BrandqMetrics) {
  return {
    providerCall(provider: string, seconds: number, outcome: string): void {
      metrics.providerLatency.observe({ provider, outcome }, seconds);
    },
    booked(runId: string, provider: string, usage: BookedUsage): void {
      metrics.costDollars.inc({ provider, run: runId }, usage.costMicros / 1_000_000);
      if (usage.inputTokens) metrics.tokens.inc({ provider, direction: 'input' }, usage.inputTokens);
      if (usage.outputTokens) metrics.tokens.inc({ provider, direction: 'output' }, usage.outputTokens);
    },
    rateLimited(provider: string): void {
      metrics.rateLimitEvents.inc({ provider });
    },
    cacheHit(provider: string): void {
      metrics.cacheHits.inc({ provider });
    },
    overrun(runId: string, provider: string, micros: number): void {
      metrics.overrunDollars.inc({ provider, run: runId }, micros / 1_000_000);
    },
    redisRetry(what: string): void {
      metrics.redisRetries.inc({ what });
    },
    unconfirmed(runId: string, provider: string, micros: number): void {
      metrics.unconfirmedDollars.inc({ provider, run: runId }, micros / 1_000_000);
    },
  };
}

/** The result cache's observer hooks, feeding the worker's Prometheus metrics. */
export function cacheMetrics(metrics: BrandqMetrics) {
  return {
    fillLockLost: (provider: string, reason: string) => metrics.cacheTrouble.inc({ provider, event: `lock_${reason}` }),
    storeFailed: (provider: string, reason: string) => metrics.cacheTrouble.inc({ provider, event: `store_${reason}` }),
    storeFenced: (provider: string) => metrics.cacheTrouble.inc({ provider, event: 'store_fenced' }),
    waitTimedOut: (provider: string) => metrics.cacheTrouble.inc({ provider, event: 'wait_timeout' }),
  };
}
