import type { Redis } from 'ioredis';
import { ResultCache } from '@brandq/cache';
import type { Config } from '@brandq/config';
import { llmCostMicros, tavilyCostMicros, tierPrice, type LlmTier, type ModelPrice } from '@brandq/ledger';
import type { Limiter } from '@brandq/limiter';
import { ModelPrices, requestPromptTokens } from '@brandq/llm';
import { planLlm, planSearch, stepDefaultsOf } from '@brandq/pipeline';
import { shouldSkip, type FieldValue, type PromptHit, type Recipe, type RecipeStep } from '@brandq/recipe';
import type { SearchOutcome } from '@brandq/tavily';

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

/** What one step of the recipe will cost the run. */
export interface StepEstimate {
  id: string;
  type: RecipeStep['type'];
  /** The model an LLM step calls. */
  model?: string;
  /** Calls to pay for: brands minus cache hits and skips. */
  paidCalls: number;
  cached: number;
  /** Brands whose step a skip rule leaves out, known before the run (hint rules; field rules only where earlier answers are cached). */
  skipped: number;
  /** Search credits in all. */
  credits: number;
  /** Tokens per paid LLM call as the provider counts them at admission: the prompt (with its schema) and the output cap. */
  promptTokensPerCall: number;
  /** The largest prompt seen among the brands counted (a call needs it plus the output cap at once). */
  maxPromptTokens: number;
  outputTokensPerCall: number;
  /** The most the step's paid calls can cost: every call at its output cap, at its tier's price. */
  costMicros: number;
  /** An LLM step's tier: its own, else the run's. */
  tier?: LlmTier;
  /** The same calls at the standard price: what the tier saves is the difference. */
  standardCostMicros: number;
}

export interface RunEstimate {
  brands: number;
  recipe: string;
  steps: StepEstimate[];
  /** Search and LLM answers already in the cache: free. */
  cachedSearches: number;
  cachedAnswers: number;
  paidSearches: number;
  paidLlmCalls: number;
  /** Tokens per paid LLM call at admission (prompt and output cap), averaged over the steps. */
  tokensPerCall: number;
  estimatedTokens: number;
  /** An upper bound: every LLM answer at its output cap, every search at its depth's credits. */
  estimatedCostMicros: number;
  /** What the cheaper tiers save against the standard price on that bound. */
  savingMicros: number;
  /** Limit-derived lower bound on the run's duration. */
  estimatedSeconds: number;
  binding: BindingLimit;
  /** Calls (or brands, for live workers) per minute each limit allows. */
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

/** Brands whose prompts are counted for a step's tokens per call; the rest are assumed alike. */
const TOKEN_SAMPLE = 100;
/**
 * A search result the estimate has not seen: as long as a prompt ever shows one (the
 * prompt cuts a hit's content at 1,200 characters), so the estimate errs high.
 */
const UNSEEN_HIT: PromptHit = { title: 'x'.repeat(80), url: `https://${'x'.repeat(40)}.example.com/`, content: 'lorem ipsum '.repeat(100) };
/** An earlier step's field the estimate cannot know. */
const UNSEEN_FIELD = 'an answer of a few words';

interface StepTally {
  cached: number;
  skipped: number;
  paid: number;
  promptTokens: number[];
}

/**
 * What a run will cost and how long it will take before anything is enqueued: per recipe
 * step, the calls the cache already answers (walking each brand's steps as far as the cache
 * knows them, with the pipeline's own cache keys), the paid calls, tokens and dollars (an
 * upper bound), and which limit binds.
 */
export async function estimateRun(deps: EstimateDeps, brands: readonly PreflightBrand[], opts: { noCache: boolean; recipe: Recipe; llmTier?: LlmTier }): Promise<RunEstimate> {
  const { redis, config, limiter } = deps;
  const { recipe } = opts;
  const defaults = stepDefaultsOf(config);
  // The prices the workers reserve at: the table, else the provider's models endpoint; a
  // model priced nowhere is refused here, before the run exists.
  const prices = new ModelPrices({ baseURL: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY, table: config.LLM_PRICING });
  const priceOf = new Map<string, ModelPrice>();
  for (const step of recipe.steps) {
    if (step.type !== 'llm') continue;
    const model = step.model ?? defaults.model;
    if (!priceOf.has(model)) priceOf.set(model, await prices.priceOf(model));
  }
  const cache = !opts.noCache && config.CACHE_TTL_HOURS > 0 ? new ResultCache(redis, { ttlSeconds: config.CACHE_TTL_HOURS * 3600 }) : undefined;
  const tallies = new Map<string, StepTally>(recipe.steps.map((s) => [s.id, { cached: 0, skipped: 0, paid: 0, promptTokens: [] }]));
  const sampleEvery = Math.max(1, Math.floor(brands.length / TOKEN_SAMPLE));
  // Concurrent lookups in chunks: one round trip's latency per chunk, not per brand, and no
  // multi-key command, so it works the same on Redis Cluster.
  const CHUNK = 200;
  for (let i = 0; i < brands.length; i += CHUNK) {
    await Promise.all(brands.slice(i, i + CHUNK).map((brand, j) => walkBrand(brand, (i + j) % sampleEvery === 0)));
  }

  async function walkBrand(brand: PreflightBrand, sampled: boolean): Promise<void> {
    const ctx = { brand: brand.name, hints: brand.hints, results: {} as Record<string, readonly PromptHit[]>, fields: {} as Record<string, FieldValue> };
    // While every earlier step is known (cached or skipped by a known rule), the next step's
    // request is exact: its cache key can be looked up and its skip rule decided.
    let known = true;
    for (const step of recipe.steps) {
      const tally = tallies.get(step.id)!;
      // A rule on hints is always decidable; one on earlier fields only while they are known.
      const decidable = known || (step.skipIf?.present.every((name) => name.startsWith('hint.')) ?? true);
      if (decidable && shouldSkip(step, ctx)) {
        tally.skipped += 1;
        continue;
      }
      if (step.type === 'search') {
        const plan = planSearch(step, ctx, defaults);
        const found = known && cache ? await cache.peek<SearchOutcome>('tavily', plan.cacheKey) : undefined;
        if (found) {
          tally.cached += 1;
          ctx.results[step.id] = found.hits;
        } else {
          tally.paid += 1;
          known = false;
          ctx.results[step.id] = Array.from({ length: plan.request.maxResults }, () => UNSEEN_HIT);
        }
        continue;
      }
      const plan = planLlm(step, ctx, defaults);
      const found = known && cache ? await cache.peek<Record<string, FieldValue>>('llm', plan.cacheKey) : undefined;
      if (found) {
        tally.cached += 1;
        Object.assign(ctx.fields, found);
        continue;
      }
      tally.paid += 1;
      known = false;
      if (sampled) tally.promptTokens.push(requestPromptTokens(plan.request.messages, plan.request.responseFormat));
      for (const field of step.fields) ctx.fields[field.name] = UNSEEN_FIELD;
    }
  }

  const steps: StepEstimate[] = recipe.steps.map((step) => {
    const tally = tallies.get(step.id)!;
    const base = { id: step.id, type: step.type, paidCalls: tally.paid, cached: tally.cached, skipped: tally.skipped };
    if (step.type === 'search') {
      const credits = tally.paid * planSearch(step, { brand: '', hints: {}, results: {}, fields: {} }, defaults).credits;
      const costMicros = tavilyCostMicros(credits, config.TAVILY_COST_PER_CREDIT);
      return { ...base, credits, promptTokensPerCall: 0, maxPromptTokens: 0, outputTokensPerCall: 0, costMicros, standardCostMicros: costMicros };
    }
    const model = step.model ?? defaults.model;
    const output = step.maxOutputTokens ?? defaults.maxOutputTokens;
    const prompt = tally.promptTokens.length === 0 ? 0 : Math.ceil(tally.promptTokens.reduce((a, b) => a + b, 0) / tally.promptTokens.length);
    const maxPromptTokens = Math.max(0, ...tally.promptTokens);
    const tier = step.tier ?? opts.llmTier ?? 'standard';
    const price = priceOf.get(model)!;
    return {
      ...base,
      model,
      tier,
      credits: 0,
      promptTokensPerCall: prompt,
      maxPromptTokens,
      outputTokensPerCall: output,
      costMicros: tally.paid * llmCostMicros(tierPrice(price, tier), prompt, output),
      standardCostMicros: tally.paid * llmCostMicros(tierPrice(price, 'standard'), prompt, output),
    };
  });

  const sum = (type: RecipeStep['type'], pick: (s: StepEstimate) => number) => steps.filter((s) => s.type === type).reduce((total, s) => total + pick(s), 0);
  const paidLlmCalls = sum('llm', (s) => s.paidCalls);
  const paidSearches = sum('search', (s) => s.paidCalls);
  const estimatedTokens = sum('llm', (s) => s.paidCalls * (s.promptTokensPerCall + s.outputTokensPerCall));
  const tokensPerCall = paidLlmCalls === 0 ? 0 : Math.ceil(estimatedTokens / paidLlmCalls);
  const llmSteps = recipe.steps.filter((s) => s.type === 'llm').length;
  const searchSteps = recipe.steps.length - llmSteps;

  const llmStats = await limiter.stats('llm');
  const tavilyStats = await limiter.stats('tavily');
  const llmLimits = limiter.limitsOf('llm');
  const tavilyLimits = limiter.limitsOf('tavily');
  // Concurrency caps bind through latency: use the latency the limiter measured (how long
  // permits were held), when earlier calls measured one.
  const perMinute = (slots: number, holdMs: number) => (slots > 0 && holdMs > 0 ? (slots * 60_000) / holdMs : Number.POSITIVE_INFINITY);
  const brandMs = llmStats.avgHoldMs > 0 && tavilyStats.avgHoldMs > 0 ? llmSteps * llmStats.avgHoldMs + searchSteps * tavilyStats.avgHoldMs : 0;
  const ratesPerMinute: Record<BindingLimit, number> = {
    'llm requests per minute': llmLimits.rpm,
    'llm tokens per minute': llmLimits.effectiveTpm > 0 && tokensPerCall > 0 ? llmLimits.effectiveTpm / tokensPerCall : Number.POSITIVE_INFINITY,
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
    recipe: recipe.name,
    steps,
    cachedSearches: sum('search', (s) => s.cached),
    cachedAnswers: sum('llm', (s) => s.cached),
    paidSearches,
    paidLlmCalls,
    tokensPerCall,
    estimatedTokens,
    estimatedCostMicros: steps.reduce((total, s) => total + s.costMicros, 0),
    savingMicros: steps.reduce((total, s) => total + s.standardCostMicros - s.costMicros, 0),
    estimatedSeconds: Math.ceil(minutes * 60),
    binding,
    ratesPerMinute,
    liveWorkers: deps.liveWorkers,
    cooldowns,
  };
}
