import { describe, expect, it } from 'vitest';
import { loadConfig } from '@brandq/config';
import { createLimiter, limitsFromConfig } from '@brandq/limiter';
import { llmCostMicros, tavilyCostMicros } from '@brandq/ledger';
import { requestPromptTokens } from '@brandq/llm';
import { planLlm, planSearch, stepDefaultsOf } from '@brandq/pipeline';
import { defaultRecipe, parseRecipe, type LlmStep, type SearchStep } from '@brandq/recipe';
import { cacheKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { estimateRun } from './estimate-run.js';
import { formatEstimate } from './format-estimate.js';

const redis = useTestRedis();
const brands = Array.from({ length: 10 }, (_, i) => ({ name: `Preflight ${i}`, hints: {} }));

describe('estimateRun', () => {
  it('counts cached searches and answers exactly with the pipeline\'s own keys, and prices only the paid calls, at most', async () => {
    const client = redis.client();
    const config = loadConfig({ OPENAI_TPM_LIMIT: '30000', OPENAI_RPM_LIMIT: '60', TAVILY_RPM_LIMIT: '100' });
    const limiter = createLimiter({ redis: client, providers: limitsFromConfig(config) });
    const recipe = defaultRecipe();
    const [searchStep, factsStep] = recipe.steps as [SearchStep, LlmStep];
    const defaults = stepDefaultsOf(config);
    // Brands 0-2 have a cached search; 0-1 also a cached answer for the prompt that search gives.
    for (const b of brands.slice(0, 3)) {
      const ctx = { brand: b.name, hints: b.hints, results: {}, fields: {} };
      const search = planSearch(searchStep, ctx, defaults);
      const hits = [{ title: 't', url: 'https://x.example.com/', content: 'c', score: 1 }];
      await client.set(cacheKeys('tavily', search.cacheKey).value, JSON.stringify({ query: search.query, hits, credits: 1, creditsReported: true, headers: {} }));
      if (b.name !== 'Preflight 2') {
        const answer = planLlm(factsStep, { ...ctx, results: { search: hits } }, defaults);
        await client.set(cacheKeys('llm', answer.cacheKey).value, JSON.stringify({ website: null }));
      }
    }
    const estimate = await estimateRun({ redis: client, config, limiter, liveWorkers: 2 }, brands, { noCache: false, recipe });
    expect(estimate).toMatchObject({ brands: 10, recipe: 'brand-facts', cachedSearches: 3, cachedAnswers: 2, paidSearches: 7, paidLlmCalls: 8 });
    const [searchEstimate, factsEstimate] = estimate.steps;
    expect(searchEstimate).toMatchObject({ id: 'search', paidCalls: 7, cached: 3, credits: 7, costMicros: tavilyCostMicros(7, config.TAVILY_COST_PER_CREDIT) });
    // Tokens per call as the limiter counts them at admission: each paid prompt as it will be
    // sent (brand 2 with its cached search, the others with unseen, full-size results), and the output cap.
    const unseenHits = Array.from({ length: config.TAVILY_MAX_RESULTS }, () => ({ title: 'x'.repeat(80), url: `https://${'x'.repeat(40)}.example.com/`, content: 'lorem ipsum '.repeat(100) }));
    const promptOf = (name: string, hits: readonly { title: string; url: string; content: string }[]) => {
      const plan = planLlm(factsStep, { brand: name, hints: {}, results: { search: hits }, fields: {} }, defaults);
      return requestPromptTokens(plan.request.messages, plan.request.responseFormat);
    };
    const paidPrompts = [promptOf('Preflight 2', [{ title: 't', url: 'https://x.example.com/', content: 'c' }]), ...brands.slice(3).map((b) => promptOf(b.name, unseenHits))];
    expect(factsEstimate?.promptTokensPerCall).toBe(Math.ceil(paidPrompts.reduce((a, b) => a + b, 0) / paidPrompts.length));
    expect(factsEstimate).toMatchObject({ id: 'facts', paidCalls: 8, cached: 2, outputTokensPerCall: config.OPENAI_MAX_OUTPUT_TOKENS });
    expect(factsEstimate?.costMicros).toBe(8 * llmCostMicros(config.LLM_PRICING[config.OPENAI_MODEL]!, factsEstimate!.promptTokensPerCall, config.OPENAI_MAX_OUTPUT_TOKENS));
    expect(estimate.estimatedCostMicros).toBe(searchEstimate!.costMicros + factsEstimate!.costMicros);
    // 8 calls x ~2,700 tokens against 25,500 effective TPM vs 60 RPM vs 100 RPM: tokens bind.
    expect(estimate.binding).toBe('llm tokens per minute');
    expect(formatEstimate(estimate, 50_000)).toMatch(/Brands: 10 \(cached: 3 searches, 2 answers\)[\s\S]*- facts \(llm\): 8 paid, 2 cached[\s\S]*binding limit: llm tokens per minute/);

    const uncached = await estimateRun({ redis: client, config, limiter, liveWorkers: 0 }, brands, { noCache: true, recipe });
    expect(uncached).toMatchObject({ cachedSearches: 0, paidLlmCalls: 10 });
  });

  it('estimates every step of a multi-step recipe, and leaves out steps a hint rule skips', async () => {
    const client = redis.client();
    const config = loadConfig({});
    const limiter = createLimiter({ redis: client, providers: limitsFromConfig(config) });
    const recipe = parseRecipe(
      [
        'name: two-searches',
        'steps:',
        '  - { id: search, type: search, query: "{{brand}}" }',
        '  - id: site',
        '    type: search',
        '    query: "{{brand}} official site"',
        '    skip_if: { present: [hint.website] }',
        '  - id: facts',
        '    type: llm',
        '    prompt: "Brand: {{brand}}\\n{{results.search}}\\n{{results.site}}"',
        '    fields: [{ name: category, type: string, description: the category }]',
        '  - id: score',
        '    type: llm',
        '    finalize: true',
        '    max_output_tokens: 50',
        '    prompt: "Brand: {{brand}} in {{field.category}}"',
        '    fields: [{ name: score, type: integer, description: a score, min: 0, max: 100 }]',
      ].join('\n'),
      'two-searches.yaml',
    );
    const mixed = brands.map((b, i) => (i < 4 ? { ...b, hints: { website: `https://b${i}.example.com` } } : b));
    const estimate = await estimateRun({ redis: client, config, limiter, liveWorkers: 1 }, mixed, { noCache: true, recipe });
    expect(estimate.steps.map((s) => [s.id, s.paidCalls, s.skipped])).toEqual([
      ['search', 10, 0],
      ['site', 6, 4],
      ['facts', 10, 0],
      ['score', 10, 0],
    ]);
    expect(estimate.steps[3]).toMatchObject({ outputTokensPerCall: 50 });
    expect(estimate).toMatchObject({ paidSearches: 16, paidLlmCalls: 20 });
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
    const estimate = await estimateRun({ redis: client, config, limiter, liveWorkers: 1 }, brands, { noCache: true, recipe: defaultRecipe() });
    // One LLM call in flight at a time, each held >= 200 ms: at most 300 a minute, below 6,000 RPM.
    expect(estimate.binding).toBe('llm concurrency');
    expect(estimate.ratesPerMinute['llm concurrency']).toBeLessThanOrEqual(300);
  });

  it('reports a fleet-wide cooldown in force', async () => {
    const client = redis.client();
    const config = loadConfig({});
    const limiter = createLimiter({ redis: client, providers: limitsFromConfig(config) });
    await limiter.cooldown('llm', { retryAfterMs: 60_000 });
    const estimate = await estimateRun({ redis: client, config, limiter, liveWorkers: 1 }, brands, { noCache: false, recipe: defaultRecipe() });
    expect(estimate.cooldowns.llm).toBeGreaterThan(Date.now());
  });
});
