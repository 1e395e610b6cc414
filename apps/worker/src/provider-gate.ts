import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import type { Provider } from '@brandq/errors';
import { createLimiter, limitsFromConfig, type Limiter, type LimiterOptions } from '@brandq/limiter';
import type { Logger } from '@brandq/logger';
import type { ProviderGate } from '@brandq/pipeline';

const PROVIDERS: readonly Provider[] = ['llm', 'tavily', 'sheets'];

export interface WorkerGate extends ProviderGate {
  limiter: Limiter;
  /** Fleet-wide limiter state for the metrics endpoint. */
  metricsSnapshot(): Promise<Record<string, { activeConcurrency: number; nextSlotEpochSeconds: number }>>;
  close(): Promise<void>;
}

/** The shared Redis limiter, seen by the pipeline as its narrow `ProviderGate`. */
export function createProviderGate(redis: Redis, config: Config, logger: Logger, onDeferral?: LimiterOptions['onDeferral']): WorkerGate {
  const limiter = createLimiter({ redis, providers: limitsFromConfig(config), logger, ...(onDeferral ? { onDeferral } : {}) });
  return {
    limiter,
    acquire: (provider, request) => limiter.acquire(provider, request),
    cooldown: async (provider, retryAfterMs) => {
      await limiter.cooldown(provider, { retryAfterMs });
    },
    syncFromHeaders: async (provider, headers) => {
      await limiter.syncFromHeaders(provider, headers);
    },
    async metricsSnapshot() {
      const out: Record<string, { activeConcurrency: number; nextSlotEpochSeconds: number }> = {};
      for (const provider of PROVIDERS) {
        const s = await limiter.stats(provider);
        out[provider] = { activeConcurrency: s.activeLeases, nextSlotEpochSeconds: s.nextSlotAtMs / 1000 };
      }
      return out;
    },
    close: () => limiter.close(),
  };
}
