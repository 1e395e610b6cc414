import { describe, expect, it } from 'vitest';
import { loadConfig } from '@brandq/config';
import { createLimiter, limitsFromConfig } from '@brandq/limiter';
import { buildBrandPrompt } from '@brandq/llm';
import { llmCacheKey, searchCacheKey } from '@brandq/pipeline';
import { cacheKeys } from '@brandq/redis';
import { searchQueryFor } from '@brandq/tavily';
import { useTestRedis } from '@brandq/testing';
import { estimateRun } from './estimate-run.js';
import { formatEstimate } from './format-estimate.js';

const redis = useTestRedis();
const brands = Array.from({ length: 10 }, (_, i) => ({ name: `Preflight ${i}`, hints: {} }));

describe('estimateRun', () => {
  it('counts cached searches and answers exactly, and prices only the paid calls', async () => {
    const client = redis.client();
    const config = loadConfig({ OPENAI_TPM_LIMIT: '30000', OPENAI_RPM_LIMIT: '60', TAVILY_RPM_LIMIT: '100', OPENAI_EST_TOKENS_PER_RUN: '1000' });
    const limiter = createLimiter({ redis: client, providers: limitsFromConfig(config) });
    // Brands 0-2 have a cached search; 0-1 also a cached answer for the prompt that search gives.
    for (const b of brands.slice(0, 3)) {
      const search = { query: searchQueryFor(b.name), hits: [{ title: 't', url: 'https://x.example.com/', content: 'c', score: 1 }], credits: 1, creditsReported: true, headers: {} };
      await client.set(cacheKeys('tavily', searchCacheKey(search.query, config.TAVILY_SEARCH_DEPTH, config.TAVILY_MAX_RESULTS)).value, JSON.stringify(search));
      if (b.name !== 'Preflight 2') {
        const messages = buildBrandPrompt(b.name, b.hints, search.hits);
        await client.set(cacheKeys('llm', llmCacheKey(config.OPENAI_MODEL, config.OPENAI_MAX_OUTPUT_TOKENS, messages)).value, '{}');
      }
    }
    const estimate = await estimateRun({ redis: client, config, limiter, liveWorkers: 2 }, brands, { noCache: false });
    expect(estimate).toMatchObject({ brands: 10, cachedSearches: 3, cachedAnswers: 2, paidSearches: 7, paidLlmCalls: 8, tokensPerCall: 1000, tokensPerCallSource: 'configured estimate' });
    // 8 calls x 1000 tokens against 25,500 effective TPM vs 60 RPM vs 100 RPM: tokens bind.
    expect(estimate.binding).toBe('llm tokens per minute');
    expect(estimate.estimatedCostMicros).toBe(7 * 8000 + 8 * Math.round(750 * 0.15 + 250 * 0.6));
    expect(formatEstimate(estimate, 50_000)).toMatch(/Brands: 10 \(cached: 3 searches, 2 answers\)[\s\S]*binding limit: llm tokens per minute/);

    const uncached = await estimateRun({ redis: client, config, limiter, liveWorkers: 0 }, brands, { noCache: true });
    expect(uncached).toMatchObject({ cachedSearches: 0, paidLlmCalls: 10 });
  });

  it('lets measured latency make a concurrency cap or the live workers the binding limit', async () => {
    const client = redis.client();
    const config = loadConfig({ OPENAI_MAX_CONCURRENCY: '1', OPENAI_RPM_LIMIT: '6000', OPENAI_TPM_LIMIT: '10000000', TAVILY_RPM_LIMIT: '6000', WORKER_CONCURRENCY: '50' });
    const limiter = createLimiter({ redis: client, providers: limitsFromConfig(config) });
    for (const provider of ['llm', 'tavily']) {
      const permit = await limiter.acquire(provider, { tokens: 100 });
      await new Promise((r) => setTimeout(r, 200));
      await permit.settle({ usedTokens: 100 });
    }
    const estimate = await estimateRun({ redis: client, config, limiter, liveWorkers: 1 }, brands, { noCache: true });
    // One LLM call in flight at a time, each held >= 200 ms: at most 300 a minute, below 6,000 RPM.
    expect(estimate.binding).toBe('llm concurrency');
    expect(estimate.ratesPerMinute['llm concurrency']).toBeLessThanOrEqual(300);
    expect(estimate.tokensPerCallSource).toBe('measured');
  });

  it('reports a fleet-wide cooldown in force', async () => {
    const client = redis.client();
    const config = loadConfig({});
    const limiter = createLimiter({ redis: client, providers: limitsFromConfig(config) });
    await limiter.cooldown('llm', { retryAfterMs: 60_000 });
    const estimate = await estimateRun({ redis: client, config, limiter, liveWorkers: 1 }, brands, { noCache: false });
    expect(estimate.cooldowns.llm).toBeGreaterThan(Date.now());
  });
});
