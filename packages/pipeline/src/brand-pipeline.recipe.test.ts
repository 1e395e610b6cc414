import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BadOutputError } from '@brandq/errors';
import { expectedAnswer, expectedFacts, expectedSearchResults, startFakeOpenAI, startFakeTavily, type FakeOpenAIServer, type FakeTavilyServer, type LedgerEntry } from '@brandq/fakes';
import { CostLedger, type ModelPrice } from '@brandq/ledger';
import { createLimiter, MemoryLimiterStore, type Limiter } from '@brandq/limiter';
import { LlmClient } from '@brandq/llm';
import { createLogger } from '@brandq/logger';
import type { BrandJobData } from '@brandq/queue';
import { parseRecipe, responseFormatOf, resultFields, serializeRecipe, type LlmStep, type Recipe } from '@brandq/recipe';
import { runKeys } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { TavilySearchClient } from '@brandq/tavily';
import { useTestRedis } from '@brandq/testing';
import { BrandPipeline, type BrandCheckpoint, type ProcessContext } from './brand-pipeline.js';
import type { ProviderGate } from './provider-gate.js';

const redis = useTestRedis();
const logger = createLogger({ name: 'pipeline-recipe-test', level: 'silent', format: 'json' });
const PRICE: ModelPrice = { inputPerMillion: 0.15, outputPerMillion: 0.6 };
const DEFAULT_MODEL = 'gpt-4o-mini';
/**
 * The finalize step names its own model: the fake records each request's model (not its
 * schema), so this is how the fake's ledger tells the two llm steps apart. It bills both at PRICE.
 */
const FINALIZE_MODEL = 'openai/gpt-4o-mini';

/** Search, extraction, then a finalizing verdict: the shape of brand-profile.yaml, cut down. */
const THREE_STEPS = parseRecipe(
  `
name: three-steps
steps:
  - id: search
    type: search
    query: '"{{brand}}" brand company official website'
  - id: extract
    type: llm
    prompt: |
      Brand: {{brand}}
      {{hints}}

      Search results:
      {{results.search}}
    fields:
      - { name: website, type: url, description: Official website URL }
      - { name: category, type: string, description: Product category, max_length: 100, required: true }
      - { name: founded_year, type: integer, description: Year the brand was founded, min: 1000, max: 2100 }
      - { name: sources, type: sources, description: URLs of the search results used }
  - id: verdict
    type: llm
    finalize: true
    model: ${FINALIZE_MODEL}
    prompt: |
      Brand: {{brand}}
      Category: {{field.category}}

      Search results:
      {{results.search}}
    fields:
      - { name: segment, type: enum, description: Price positioning, values: [mass, premium, luxury], required: true }
      - { name: fit_score, type: integer, description: Fit with the target profile, min: 0, max: 100, required: true }
      - { name: evidence_urls, type: sources, description: URLs the verdict relies on }
`,
  'three-steps.yaml',
);

let openai: FakeOpenAIServer;
let tavilyFake: FakeTavilyServer;
beforeAll(async () => {
  // No slice pacing at the fakes: the limiter under test is the only pacing, and it is generous.
  [openai, tavilyFake] = await Promise.all([startFakeOpenAI({ sliceMs: 0 }), startFakeTavily({ sliceMs: 0, rpm: 100_000 })]);
});
afterAll(async () => {
  await Promise.all([openai.close(), tavilyFake.close()]);
});
beforeEach(() => {
  openai.reset();
  tavilyFake.reset();
  openai.configure({ latencyMs: { min: 0, max: 0 }, answers: {} });
});

/** The in-memory limiter behind the pipeline's narrow gate. */
function gateOver(limiter: Limiter): ProviderGate {
  return {
    acquire: (provider, request) => limiter.acquire(provider, request),
    cooldown: async (provider, retryAfterMs) => void (await limiter.cooldown(provider, { retryAfterMs })),
    syncFromHeaders: async (provider, headers) => void (await limiter.syncFromHeaders(provider, headers)),
  };
}

function memoryLimiter(llm: { maxConcurrency: number; finalizeConcurrency: number } = { maxConcurrency: 3, finalizeConcurrency: 1 }): Limiter {
  return createLimiter({
    store: new MemoryLimiterStore(),
    providers: {
      llm: { rpm: 100_000, burst: 1000, tpm: 100_000_000, leaseMs: 60_000, ...llm },
      tavily: { rpm: 100_000, burst: 1000 },
    },
  });
}

function pipelineOver(limiter: Limiter): BrandPipeline {
  const client = redis.client();
  return new BrandPipeline({
    runs: new RunStore(client),
    ledger: new CostLedger(client),
    search: new TavilySearchClient({ apiKey: 'tvly-test', baseUrl: tavilyFake.url, depth: 'basic', maxResults: 5, timeoutSeconds: 5 }),
    llm: new LlmClient({ apiKey: 'sk-test', baseURL: openai.url, model: DEFAULT_MODEL, maxOutputTokens: 400, timeoutMs: 5000 }),
    gate: gateOver(limiter),
    priceOf: async () => PRICE,
    defaults: { searchDepth: 'basic', searchMaxResults: 5, model: DEFAULT_MODEL, maxOutputTokens: 400 },
    tavilyUsdPerCredit: 0.008,
    logger,
  });
}

function brand(runId: string, name: string, hints: Record<string, string> = {}): BrandJobData {
  return { runId, key: name.toLowerCase(), name, rowNumber: 2, hints, source: { type: 'csv', path: 'brands.csv' } as BrandJobData['source'] };
}

async function createRun(runId: string, recipe: Recipe, brands: BrandJobData[]): Promise<void> {
  await new RunStore(redis.client()).createOrExtendRun({ id: runId, source: brands[0]!.source, sourceKey: `csv:${runId}`, brands, skipped: [], recipe });
}

/** A job context that keeps every checkpoint the pipeline saves, as the queue would (JSON). */
function recordingContext(checkpoint: BrandCheckpoint = {}, afterSave: (saved: BrandCheckpoint) => void = () => undefined): ProcessContext & { saved: BrandCheckpoint[] } {
  const saved: BrandCheckpoint[] = [];
  return {
    checkpoint,
    saved,
    saveCheckpoint: async (next) => {
      saved.push(JSON.parse(JSON.stringify(next)) as BrandCheckpoint);
      afterSave(next);
    },
  };
}

function llmStep(recipe: Recipe, id: string): LlmStep {
  const step = recipe.steps.find((s) => s.id === id);
  if (step?.type !== 'llm') throw new Error(`no llm step ${id}`);
  return step;
}

/** The URLs of the hits the fake Tavily answers for the search step of THREE_STEPS. */
function searchUrls(name: string): string[] {
  return expectedSearchResults(`"${name}" brand company official website`).map((hit) => hit.url);
}

/** The fields THREE_STEPS must produce for a brand: the fake's answers, as the recipe's cleaning stores them. */
function expectedThreeStepFields(name: string): Record<string, unknown> {
  const facts = expectedFacts(name);
  const verdict = expectedAnswer(responseFormatOf(llmStep(THREE_STEPS, 'verdict')).json_schema.schema, [{ role: 'user', content: `Brand: ${name}` }]);
  return {
    // A url is stored as the URL parser writes it (with the root path).
    website: `${facts.website}/`,
    category: facts.category,
    founded_year: facts.founded_year,
    sources: searchUrls(name),
    segment: verdict['segment'],
    fit_score: verdict['fit_score'],
    evidence_urls: searchUrls(name),
  };
}

/** Requests the fake LLM received for a brand's step, told apart by the step's model. */
function llmRequests(name: string, model: string): LedgerEntry[] {
  return openai.ledger.filter((e) => e.brand === name && e.model === model);
}

function billedMicros(entries: readonly LedgerEntry[]): number {
  return entries.filter((e) => e.billed).reduce((sum, e) => sum + e.costMicros, 0);
}

/** The most requests in flight at once at the fake (arrival to answer); an answer and an arrival in the same ms do not overlap. */
function maxInFlight(entries: readonly LedgerEntry[]): number {
  const events = entries.flatMap((e) => [
    { at: e.at, delta: 1 },
    { at: e.completedAt ?? Number.POSITIVE_INFINITY, delta: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let inFlight = 0;
  let max = 0;
  for (const { delta } of events) {
    inFlight += delta;
    max = Math.max(max, inFlight);
  }
  return max;
}

describe('BrandPipeline with a recipe', () => {
  it('answers every field of the recipe, in its order, with the fake\'s answers as the recipe cleans them; one paid call per step', async () => {
    const limiter = memoryLimiter();
    const job = brand('recipe-fields', 'Acme');
    await createRun('recipe-fields', THREE_STEPS, [job]);
    const ctx = recordingContext();
    const { result, fresh } = await pipelineOver(limiter).process(job, THREE_STEPS, ctx);

    expect(fresh).toBe(true);
    expect(Object.keys(result.fields)).toEqual(resultFields(THREE_STEPS).map((f) => f.name));
    expect(result.fields).toEqual(expectedThreeStepFields('Acme'));
    expect(await new RunStore(redis.client()).getResult('recipe-fields', 'acme')).toEqual(result);
    // One checkpoint per finished step, each holding every step done so far.
    expect(ctx.saved.map((c) => Object.keys(c.steps ?? {}))).toEqual([['search'], ['search', 'extract'], ['search', 'extract', 'verdict']]);
    expect(tavilyFake.ledger.paidCallsByBrand()).toEqual(new Map([['Acme', 1]]));
    expect(llmRequests('Acme', DEFAULT_MODEL).filter((e) => e.billed)).toHaveLength(1);
    expect(llmRequests('Acme', FINALIZE_MODEL).filter((e) => e.billed)).toHaveLength(1);
    await limiter.close();
  });

  describe('checkpoints: a retried brand pays only for the steps it had not finished', () => {
    /** Per step: calls booked in the CostLedger equal the fakes' paid requests, and so does the money. */
    async function expectStepBooksEqualTheFakes(runId: string, name: string): Promise<void> {
      const { steps, reservedMicros } = await new CostLedger(redis.client()).snapshot(runId);
      const searches = tavilyFake.ledger.filter((e) => e.brand === name);
      const extracts = llmRequests(name, DEFAULT_MODEL);
      const verdicts = llmRequests(name, FINALIZE_MODEL);
      expect([searches, extracts, verdicts].map((entries) => entries.filter((e) => e.billed).length)).toEqual([1, 1, 1]);
      expect(steps['search']).toMatchObject({ calls: 1, costMicros: billedMicros(searches) });
      expect(steps['extract']).toMatchObject({ calls: 1, costMicros: billedMicros(extracts) });
      expect(steps['verdict']).toMatchObject({ calls: 1, costMicros: billedMicros(verdicts) });
      expect(steps['verdict']?.costMicros).toBeGreaterThan(0);
      expect(reservedMicros).toBe(0);
    }

    it('a worker killed after step 2 of 3: the retry pays for step 3 only', async () => {
      const limiter = memoryLimiter();
      const job = brand('recipe-kill', 'Acme');
      await createRun('recipe-kill', THREE_STEPS, [job]);
      const pipeline = pipelineOver(limiter);
      // The process dies right after step 2's checkpoint is stored.
      const killed = recordingContext({}, (saved) => {
        if (Object.keys(saved.steps ?? {}).length === 2) throw new Error('worker killed');
      });
      await expect(pipeline.process(job, THREE_STEPS, killed)).rejects.toThrow('worker killed');
      expect(llmRequests('Acme', FINALIZE_MODEL)).toHaveLength(0);

      const retry = recordingContext(killed.saved.at(-1));
      const { result } = await pipeline.process(job, THREE_STEPS, retry);

      expect(result.fields).toEqual(expectedThreeStepFields('Acme'));
      expect(retry.saved.map((c) => Object.keys(c.steps ?? {}))).toEqual([['search', 'extract', 'verdict']]);
      await expectStepBooksEqualTheFakes('recipe-kill', 'Acme');
      await limiter.close();
    });

    it('a checkpoint made under another recipe (the run was switched with --force) is not reused, whatever its step ids', async () => {
      const limiter = memoryLimiter();
      const job = brand('recipe-switched', 'Acme');
      await createRun('recipe-switched', THREE_STEPS, [job]);
      const pipeline = pipelineOver(limiter);
      const first = recordingContext();
      await pipeline.process(job, THREE_STEPS, first);
      await redis.client().hdel(runKeys('recipe-switched').results, 'acme');
      // The same step ids, other questions: the old answers must not stand in for the new ones.
      const switched = parseRecipe(JSON.stringify({ ...JSON.parse(serializeRecipe(THREE_STEPS)), name: 'three-steps-v2' }).replace('Brand: {{brand}}', 'Brand: {{brand}}\\nAnswer carefully.'), 'v2.json');
      const again = recordingContext(first.saved.at(-1));
      await pipeline.process(job, switched, again);
      expect(again.saved.map((c) => Object.keys(c.steps ?? {}))).toEqual([['search'], ['search', 'extract'], ['search', 'extract', 'verdict']]);
      expect(llmRequests('Acme', FINALIZE_MODEL)).toHaveLength(2);
      await limiter.close();
    });

    it('step 3 refused by the provider (500): the retry pays for step 3 only', async () => {
      const limiter = memoryLimiter();
      const job = brand('recipe-500', 'Acme');
      await createRun('recipe-500', THREE_STEPS, [job]);
      const pipeline = pipelineOver(limiter);
      // Queued once step 2 is stored, so the 500 hits step 3's call.
      const failing = recordingContext({}, (saved) => {
        if (Object.keys(saved.steps ?? {}).length === 2) openai.injectFaults([{ status: 500, brand: 'Acme' }]);
      });
      await expect(pipeline.process(job, THREE_STEPS, failing)).rejects.toMatchObject({ kind: 'transient' });
      expect(llmRequests('Acme', FINALIZE_MODEL).map((e) => e.status)).toEqual([500]);

      const { result } = await pipeline.process(job, THREE_STEPS, recordingContext(failing.saved.at(-1)));

      expect(result.fields).toEqual(expectedThreeStepFields('Acme'));
      await expectStepBooksEqualTheFakes('recipe-500', 'Acme');
      await limiter.close();
    });
  });

  it('finalize steps run under the finalize concurrency (1) while extraction reaches the full concurrency (3)', async () => {
    const limiter = memoryLimiter({ maxConcurrency: 3, finalizeConcurrency: 1 });
    // Answers take long next to everything else a call does (even on a loaded machine), so calls
    // that are allowed to overlap do: 6 brands' extractions queue for the 3 slots.
    openai.configure({ latencyMs: { min: 150, max: 200 } });
    const names = Array.from({ length: 6 }, (_, i) => `Brand${i + 1}`);
    const jobs = names.map((name) => brand('recipe-finalize', name));
    await createRun('recipe-finalize', THREE_STEPS, jobs);
    const pipeline = pipelineOver(limiter);

    const outcomes = await Promise.all(jobs.map((job) => pipeline.process(job, THREE_STEPS, recordingContext())));

    expect(outcomes.map((o) => o.result.fields)).toEqual(names.map(expectedThreeStepFields));
    const extracts = openai.ledger.filter((e) => e.model === DEFAULT_MODEL);
    const verdicts = openai.ledger.filter((e) => e.model === FINALIZE_MODEL);
    expect([extracts.length, verdicts.length]).toEqual([names.length, names.length]);
    expect(maxInFlight(extracts)).toBe(3);
    expect(maxInFlight(verdicts)).toBe(1);
    await limiter.close();
  });

  describe('repair: an unusable answer gets one more call', () => {
    it.each(['not-json', 'wrong-schema'] as const)('a %s answer is repaired: two paid calls for the step, both booked, and a valid result', async (variant) => {
      const limiter = memoryLimiter();
      const runId = `recipe-repair-${variant}`;
      const job = brand(runId, 'Acme');
      await createRun(runId, THREE_STEPS, [job]);
      // The brand's first LLM call is step 2's.
      openai.injectFaults([{ kind: 'bad-json-content', variant, brand: 'Acme' }]);

      const { result } = await pipelineOver(limiter).process(job, THREE_STEPS, recordingContext());

      expect(result.fields).toEqual(expectedThreeStepFields('Acme'));
      const extracts = llmRequests('Acme', DEFAULT_MODEL);
      expect(extracts.map((e) => [e.fault, e.billed])).toEqual([
        ['bad-json-content', true],
        [null, true],
      ]);
      // The repair call carries the rejection note: a longer prompt.
      expect(extracts[1]!.promptTokens).toBeGreaterThan(extracts[0]!.promptTokens!);
      const { steps } = await new CostLedger(redis.client()).snapshot(runId);
      expect(steps['extract']).toMatchObject({ calls: 2, costMicros: billedMicros(extracts) });
      expect(llmRequests('Acme', FINALIZE_MODEL)).toHaveLength(1);
      await limiter.close();
    });

    it('a required field still missing after the repair fails the brand with a BadOutputError naming the field; both calls booked', async () => {
      const limiter = memoryLimiter();
      const job = brand('recipe-unrepaired', 'Nullco');
      await createRun('recipe-unrepaired', THREE_STEPS, [job]);
      openai.configure({ answers: { Nullco: JSON.stringify({ website: null, category: null, founded_year: null, sources: null }) } });
      const ctx = recordingContext();

      const failure = await pipelineOver(limiter).process(job, THREE_STEPS, ctx).catch((err: unknown) => err);

      expect(failure).toBeInstanceOf(BadOutputError);
      expect((failure as BadOutputError).message).toMatch(/category is required/);
      const extracts = llmRequests('Nullco', DEFAULT_MODEL);
      expect(extracts.filter((e) => e.billed)).toHaveLength(2);
      expect(llmRequests('Nullco', FINALIZE_MODEL)).toHaveLength(0);
      const { steps } = await new CostLedger(redis.client()).snapshot('recipe-unrepaired');
      expect(steps['extract']).toMatchObject({ calls: 2, costMicros: billedMicros(extracts) });
      // Only the search is checkpointed: a retry starts over at the extraction.
      expect(ctx.saved.map((c) => Object.keys(c.steps ?? {}))).toEqual([['search']]);
      expect(await new RunStore(redis.client()).getResult('recipe-unrepaired', 'nullco')).toBeUndefined();
      await limiter.close();
    });
  });

  describe('skip rules', () => {
    const SKIPPING = parseRecipe(
      `
name: skipping
steps:
  - id: search
    type: search
    query: '"{{brand}}" brand company official website'
  - id: site
    type: llm
    skip_if: { present: [hint.website] }
    prompt: |
      Brand: {{brand}}
      {{results.search}}
    fields:
      - { name: website, type: url, description: Official website URL }
      - { name: category, type: string, description: Product category }
  - id: category_guess
    type: llm
    model: ${FINALIZE_MODEL}
    skip_if: { present: [category] }
    prompt: |
      Brand: {{brand}}
      {{hints}}
    fields:
      - { name: guessed_category, type: string, description: Most likely product category }
`,
      'skipping.yaml',
    );

    it('skips a step whose hint is present (no request, its fields null) and a step whose field an earlier step answered', async () => {
      const limiter = memoryLimiter();
      const hinted = brand('recipe-skips', 'Hinted', { website: 'https://hinted.example.com' });
      const plain = brand('recipe-skips', 'Plain');
      await createRun('recipe-skips', SKIPPING, [hinted, plain]);
      const pipeline = pipelineOver(limiter);
      const hintedCtx = recordingContext();

      const hintedResult = (await pipeline.process(hinted, SKIPPING, hintedCtx)).result;
      const plainResult = (await pipeline.process(plain, SKIPPING, recordingContext())).result;

      // Hinted: `site` is skipped, so no category, so `category_guess` runs.
      expect(llmRequests('Hinted', DEFAULT_MODEL)).toHaveLength(0);
      expect(llmRequests('Hinted', FINALIZE_MODEL)).toHaveLength(1);
      const guess = expectedAnswer(responseFormatOf(llmStep(SKIPPING, 'category_guess')).json_schema.schema, [{ role: 'user', content: 'Brand: Hinted' }]);
      expect(hintedResult.fields).toEqual({ website: null, category: null, guessed_category: guess['guessed_category'] });
      expect(hintedCtx.saved.at(-1)?.steps?.['site']).toEqual({ skipped: true });
      // Plain: `site` answers a category, so `category_guess` is skipped.
      expect(llmRequests('Plain', DEFAULT_MODEL)).toHaveLength(1);
      expect(llmRequests('Plain', FINALIZE_MODEL)).toHaveLength(0);
      const facts = expectedFacts('Plain');
      expect(plainResult.fields).toEqual({ website: `${facts.website}/`, category: facts.category, guessed_category: null });
      // Each llm step ran for one of the two brands only: a skipped step books nothing.
      const { steps } = await new CostLedger(redis.client()).snapshot('recipe-skips');
      expect(steps['site']).toMatchObject({ calls: 1 });
      expect(steps['category_guess']).toMatchObject({ calls: 1 });
      await limiter.close();
    });
  });

  it('keeps as sources only URLs of the search results shown to that step', async () => {
    const recipe = parseRecipe(
      `
name: two-searches
steps:
  - id: search
    type: search
    query: '"{{brand}}" brand company official website'
  - id: market
    type: search
    query: '"{{brand}} stockists" price range'
  - id: facts
    type: llm
    prompt: |
      Brand: {{brand}}
      {{results.search}}
    fields:
      - { name: sources, type: sources, description: URLs of the search results used }
  - id: market_view
    type: llm
    prompt: |
      Brand: {{brand}}
      {{results.market}}
    fields:
      - { name: market_sources, type: sources, description: URLs of the market results used }
`,
      'two-searches.yaml',
    );
    const limiter = memoryLimiter();
    const job = brand('recipe-sources', 'Acme');
    await createRun('recipe-sources', recipe, [job]);
    const [own1, own2] = searchUrls('Acme');
    const [market1] = expectedSearchResults('"Acme stockists" price range').map((hit) => hit.url);
    // Both steps get the same answer, citing results of both searches and a link no search found.
    const cited = [own1, market1, 'https://invented.example.com/page', own2];
    openai.configure({ answers: { Acme: JSON.stringify({ sources: cited, market_sources: cited }) } });

    const { result } = await pipelineOver(limiter).process(job, recipe, recordingContext());

    expect(result.fields).toEqual({ sources: [own1, own2], market_sources: [market1] });
    await limiter.close();
  });
});
