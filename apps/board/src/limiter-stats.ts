import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { createLimiter, limitsFromConfig } from '@brandq/limiter';

/** Per-provider statistics of the shared limiter, as the whole fleet sees them. */
export function createLimiterStats(redis: Redis, config: Config): () => Promise<Record<string, unknown>> {
  const providers = limitsFromConfig(config);
  const limiter = createLimiter({ redis, providers });
  return async () => {
    const out: Record<string, unknown> = {};
    for (const provider of Object.keys(providers)) out[provider] = await limiter.stats(provider);
    return out;
  };
}
