import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { llmCostMicros, tavilyCostMicros } from '@brandq/ledger';
import type { Limiter } from '@brandq/limiter';
import { buildBrandPrompt, resolveModelPrice } from '@brandq/llm';
import { llmCacheKey, searchCacheKey } from '@brandq/pipeline';
import { cacheKeys } from '@brandq/redis';
import { creditsForDepth, searchQueryFor, type SearchOutcome } from '@brandq/tavily';

export interface PreflightBrand {
  name: string;
  hints: Record<string, string>;
}

export type BindingLimit =
  | 'llm requests per minute'
  | 'llm tokens per minute'
  | 'tavily requests per minute'
  | 'llm concurrency'
  | 'tavily concurrency'
  | 'live workers';

export interface RunEstimate {
  brands: number;
  /** Searches and extractions already in the cache: free. */
  cachedSearches: number;
  cachedAnswers: number;
  paidSearches: number;
  paidLlmCalls: number;
  /** Tokens per LLM call: measured by the limiter on earlier calls when there are any. */
  tokensPerCall: number;
  tokensPerCallSource: 'measured' | 'configured estimate';
  estimatedTokens: number;
  estimatedCostMicros: number;
  /** Limit-derived lower bound on the run's duration. */
  estimatedSeconds: number;
  binding: BindingLimit;
  /** Brands per minute each limit allows. */
  ratesPerMinute: Record<BindingLimit, number>;
  liveWorkers: number;
  /** Providers the fleet is holding after a 429, with the end of the hold (epoch ms). */
  cooldowns: Partial<Record<'llm' | 'tavily', number>>;
}

export interface EstimateDeps {
  redis: Redis;
  config: Config;
  limiter: Limiter;
  liveWorkers: number;
}

/**
 * What a run will cost and how long it will take before anything is enqueued: the brand
 * count, what the cache already holds, tokens and dollars, and which limit binds.
 */
export async function estimateRun(deps: EstimateDeps, brands: readonly PreflightBrand[], opts: { noCache: boolean }): Promise<RunEstimate> {
  const { redis, config, limiter } = deps;
  // The price the workers reserve at: the table, else the provider's models endpoint.
  const price = await resolveModelPrice({ model: config.OPENAI_MODEL, baseURL: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY, table: config.LLM_PRICING });
  const llmStats = await limiter.stats('llm');
  const measured = llmStats.settled > 0 && llmStats.tokensUsed > 0;
  const tokensPerCall = measured ? Math.ceil(llmStats.tokensUsed / llmStats.settled) : config.OPENAI_EST_TOKENS_PER_RUN;

  let cachedSearches = 0;
  let cachedAnswers = 0;
  if (!opts.noCache && config.CACHE_TTL_HOURS > 0) {
    // Concurrent GETs in chunks: one round trip's latency per chunk, not per brand, and no
    // multi-key command, so it works the same on Redis Cluster.
    const CHUNK = 500;
    for (let i = 0; i < brands.length; i += CHUNK) {
      const chunk = brands.slice(i, i + CHUNK);
      const searches = await Promise.all(
        chunk.map((b) => redis.get(cacheKeys('tavily', searchCacheKey(searchQueryFor(b.name, b.hints), config.TAVILY_SEARCH_DEPTH, config.TAVILY_MAX_RESULTS)).value)),
      );
      const answers = await Promise.all(
        chunk.map((b, j) => {
          const search = searches[j];
          if (search === null || search === undefined) return 0;
          // The prompt is known once the search is: the answer's cache key can be checked exactly.
          const messages = buildBrandPrompt(b.name, b.hints, (JSON.parse(search) as SearchOutcome).hits);
          return redis.exists(cacheKeys('llm', llmCacheKey(config.OPENAI_MODEL, config.OPENAI_MAX_OUTPUT_TOKENS, messages)).value);
        }),
      );
      cachedSearches += searches.filter((v) => v !== null).length;
      cachedAnswers += answers.filter((n) => n === 1).length;
    }
  }
  const paidSearches = brands.length - cachedSearches;
  const paidLlmCalls = brands.length - cachedAnswers;
  const estimatedTokens = paidLlmCalls * tokensPerCall;
  // Split measured tokens by the usual prompt/answer ratio of this workload: the output cap bounds the answer.
  const outputShare = Math.min(config.OPENAI_MAX_OUTPUT_TOKENS, Math.ceil(tokensPerCall * 0.25));
  const estimatedCostMicros =
    paidSearches * tavilyCostMicros(creditsForDepth(config.TAVILY_SEARCH_DEPTH), config.TAVILY_COST_PER_CREDIT) +
    paidLlmCalls * llmCostMicros(price, tokensPerCall - outputShare, outputShare);

  const llmLimits = limiter.limitsOf('llm');
  const tavilyLimits = limiter.limitsOf('tavily');
  const tavilyStats = await limiter.stats('tavily');
  // Concurrency caps bind through latency: use the latency the limiter measured (how long
  // permits were held), when earlier calls measured one.
  const perMinute = (slots: number, holdMs: number) => (slots > 0 && holdMs > 0 ? (slots * 60_000) / holdMs : Number.POSITIVE_INFINITY);
  const brandMs = llmStats.avgHoldMs > 0 && tavilyStats.avgHoldMs > 0 ? llmStats.avgHoldMs + tavilyStats.avgHoldMs : 0;
  const ratesPerMinute: Record<BindingLimit, number> = {
    'llm requests per minute': llmLimits.rpm,
    'llm tokens per minute': llmLimits.effectiveTpm > 0 ? llmLimits.effectiveTpm / tokensPerCall : Number.POSITIVE_INFINITY,
    'tavily requests per minute': tavilyLimits.rpm,
    'llm concurrency': perMinute(llmLimits.maxConcurrency, llmStats.avgHoldMs),
    'tavily concurrency': perMinute(tavilyLimits.maxConcurrency, tavilyStats.avgHoldMs),
    'live workers': perMinute(deps.liveWorkers * config.WORKER_CONCURRENCY, brandMs),
  };
  const work: Record<BindingLimit, number> = {
    'llm requests per minute': paidLlmCalls,
    'llm tokens per minute': paidLlmCalls,
    'tavily requests per minute': paidSearches,
    'llm concurrency': paidLlmCalls,
    'tavily concurrency': paidSearches,
    'live workers': brands.length,
  };
  let binding: BindingLimit = 'llm requests per minute';
  let minutes = 0;
  for (const limit of Object.keys(ratesPerMinute) as BindingLimit[]) {
    const m = work[limit] / ratesPerMinute[limit];
    if (m > minutes) {
      minutes = m;
      binding = limit;
    }
  }
  const cooldowns: RunEstimate['cooldowns'] = {};
  for (const provider of ['llm', 'tavily'] as const) {
    const s = provider === 'llm' ? llmStats : tavilyStats;
    if (s.cooldownUntilMs > s.nowMs) cooldowns[provider] = Date.now() + (s.cooldownUntilMs - s.nowMs);
  }
  return {
    brands: brands.length,
    cachedSearches,
    cachedAnswers,
    paidSearches,
    paidLlmCalls,
    tokensPerCall,
    tokensPerCallSource: measured ? 'measured' : 'configured estimate',
    estimatedTokens,
    estimatedCostMicros,
    estimatedSeconds: Math.ceil(minutes * 60),
    binding,
    ratesPerMinute,
    liveWorkers: deps.liveWorkers,
    cooldowns,
  };
}
