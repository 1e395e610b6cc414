import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, startFakeTavily, type FakeOpenAIServer, type FakeTavilyServer } from '@brandq/fakes';
import { CostLedger, llmCostMicros, type ModelPrice } from '@brandq/ledger';
import { LlmClient } from '@brandq/llm';
import { createLimiter, type Limiter } from '@brandq/limiter';
import { createLogger } from '@brandq/logger';
import type { BrandJobData } from '@brandq/queue';
import { defaultRecipe } from '@brandq/recipe';
import { RunStore } from '@brandq/runs';
import { TavilySearchClient } from '@brandq/tavily';
import { RunCeiling, RunShares } from '@brandq/fair-share';
import { useTestRedis } from '@brandq/testing';
import { BrandPipeline, type PipelineDeps } from './brand-pipeline.js';
import { silentObserver, type PipelineObserver } from './pipeline-observer.js';
import type { ProviderGate } from './provider-gate.js';

const redis = useTestRedis();
const logger = createLogger({ name: 'pipeline-test', level: 'silent', format: 'json' });
const PRICE: ModelPrice = { inputPerMillion: 0.15, outputPerMillion: 0.6 };

let openai: FakeOpenAIServer;
let tavilyFake: FakeTavilyServer;
beforeAll(async () => {
  [openai, tavilyFake] = await Promise.all([startFakeOpenAI(), startFakeTavily()]);
});
afterAll(async () => {
  await Promise.all([openai.close(), tavilyFake.close()]);
});
beforeEach(() => {
  openai.reset();
  tavilyFake.reset();
});

/** The real Redis limiter behind the pipeline's narrow gate, with one LLM call in flight at most. */
function gateOver(limiter: Limiter): ProviderGate {
  return {
    acquire: (provider, request) => limiter.acquire(provider, request),
    cooldown: async (provider, retryAfterMs) => void (await limiter.cooldown(provider, { retryAfterMs })),
    syncFromHeaders: async (provider, headers) => void (await limiter.syncFromHeaders(provider, headers)),
  };
}

function newLimiter(): Limiter {
  return createLimiter({
    redis: redis.client(),
    providers: {
      llm: { rpm: 10_000, burst: 1000, tpm: 10_000_000, maxConcurrency: 1, leaseMs: 60_000, windowMs: 2000 },
      tavily: { rpm: 10_000, burst: 1000, maxConcurrency: 1, leaseMs: 60_000, windowMs: 2000 },
      sheets: { rpm: 10_000, burst: 1000 },
    },
  });
}

function pipelineWith(overrides: Partial<PipelineDeps> & { limiter: Limiter; llmTimeoutMs?: number }): BrandPipeline {
  const client = redis.client();
  return new BrandPipeline({
    runs: new RunStore(client),
    ledger: new CostLedger(client),
    search: new TavilySearchClient({ apiKey: 'tvly-test', baseUrl: tavilyFake.url, depth: 'basic', maxResults: 5, timeoutSeconds: 5 }),
    llm: new LlmClient({ apiKey: 'sk-test', baseURL: openai.url, model: 'gpt-4o-mini', maxOutputTokens: 400, timeoutMs: overrides.llmTimeoutMs ?? 5000 }),
    gate: gateOver(overrides.limiter),
    priceOf: async () => PRICE,
    defaults: { searchDepth: 'basic', searchMaxResults: 5, model: 'gpt-4o-mini', maxOutputTokens: 400 },
    tavilyUsdPerCredit: 0.008,
    logger,
    ...overrides,
  });
}

function brand(runId: string, name: string): BrandJobData {
  return { runId, key: name.toLowerCase(), name, rowNumber: 2, hints: {}, source: { type: 'csv', path: 'brands.csv' } as BrandJobData['source'] };
}

async function createRun(runId: string, budgetMicros = 0, names: string[] = ['Acme']): Promise<void> {
  const client = redis.client();
  await new RunStore(client).createOrExtendRun({ id: runId, source: { type: 'csv', path: 'brands.csv' } as BrandJobData['source'], sourceKey: `csv:${runId}`, brands: names.map((n) => brand(runId, n)), skipped: [] });
  if (budgetMicros > 0) await new CostLedger(client).setBudget(runId, budgetMicros);
}

const RECIPE = defaultRecipe();
const noCheckpoint = () => ({ checkpoint: {}, saveCheckpoint: async () => undefined });

describe('BrandPipeline', () => {
  it('books exactly what the fakes billed for one brand: one search and one LLM call', async () => {
    const limiter = newLimiter();
    await createRun('pipe-books');
    const outcome = await pipelineWith({ limiter }).process(brand('pipe-books', 'Acme'), RECIPE, noCheckpoint());
    expect(outcome.fresh).toBe(true);
    const money = await new CostLedger(redis.client()).snapshot('pipe-books');
    expect(money.providers.llm.costMicros).toBe(openai.ledger.summary().billedMicros);
    expect(money.providers.tavily.calls).toBe(1);
    expect([...openai.ledger.paidCallsByBrand().values()]).toEqual([1]);
    expect(money.reservedMicros).toBe(0);
    await limiter.close();
  });

  it("stops at the run's own ceiling before the shared limiter: no permit taken, nothing paid, the job told how long to wait", async () => {
    const limiter = newLimiter();
    await createRun('pipe-ceiling', 0, ['Acme', 'Bolt']);
    const client = redis.client();
    const ceiling = new RunCeiling(client);
    const measured = new RunShares(client);
    const shares = {
      admitUnderCeiling: (runId: string, provider: string, maxRpm: number) => ceiling.admit(runId, provider, maxRpm),
      admitted: (runId: string) => void measured.admitted(runId),
    };
    const pipeline = pipelineWith({ limiter, shares });
    // One call a minute: the first brand's search takes the run's slot, its LLM call is at
    // another provider and goes too; the second brand's search must wait.
    await pipeline.process(brand('pipe-ceiling', 'Acme'), RECIPE, { ...noCheckpoint(), maxRpm: 1 });
    const calls = () => tavilyFake.ledger.summary().requests + openai.ledger.summary().requests;
    const before = calls();
    // The limiter's counts are the fleet's, shared with the other tests of this file.
    const permitsBefore = (await limiter.stats('tavily')).calls;
    await expect(pipeline.process(brand('pipe-ceiling', 'Bolt'), RECIPE, { ...noCheckpoint(), maxRpm: 1 })).rejects.toMatchObject({ kind: 'run_throttled', provider: 'tavily' });
    expect(calls()).toBe(before);
    expect((await limiter.stats('tavily')).calls).toBe(permitsBefore);
    await new Promise((r) => setTimeout(r, 50));
    expect((await measured.measure()).runs.get('pipe-ceiling')?.calls).toBe(2);
    await limiter.close();
  });

  it('returns the concurrency lease when booking the money throws, so the fleet is never stalled', async () => {
    const limiter = newLimiter();
    await createRun('pipe-lease');
    class BrokenBookingLedger extends CostLedger {
      override settle(): never {
        throw new Error('booking failed');
      }
    }
    const pipeline = pipelineWith({ limiter, ledger: new BrokenBookingLedger(redis.client()) });
    await expect(pipeline.process(brand('pipe-lease', 'Acme'), RECIPE, noCheckpoint())).rejects.toThrow('booking failed');
    // The cap is 1: a leaked lease would make this wait for the whole lease (60 s).
    expect((await limiter.stats('tavily')).activeLeases).toBe(0);
    expect((await limiter.stats('llm')).activeLeases).toBe(0);
    const again = await limiter.acquire('tavily', { maxWaitMs: 1000 });
    await again.release();
    await limiter.close();
  });

  it('books a timed-out LLM call as unconfirmed spend at its worst case, never as confirmed', async () => {
    const limiter = newLimiter();
    await createRun('pipe-timeout', 1_000_000);
    openai.injectFaults([{ kind: 'timeout', ms: 3000 }]);
    const pipeline = pipelineWith({ limiter, llmTimeoutMs: 500 });
    await expect(pipeline.process(brand('pipe-timeout', 'Acme'), RECIPE, noCheckpoint())).rejects.toMatchObject({ kind: 'transient', outcomeUnknown: true });
    const money = await new CostLedger(redis.client()).snapshot('pipe-timeout');
    expect(money.providers.llm.costMicros).toBe(0);
    expect(money.providers.llm.unconfirmedMicros).toBeGreaterThan(0);
    expect(money.unconfirmedMicros).toBe(money.providers.llm.unconfirmedMicros);
    expect(money.reservedMicros).toBe(0);
    expect((await limiter.stats('llm')).activeLeases).toBe(0);
    await limiter.close();
  });

  it('gives the reservation back when the provider refuses the request outright (nothing billed)', async () => {
    const limiter = newLimiter();
    await createRun('pipe-500', 1_000_000);
    openai.injectFaults([{ status: 500 }]);
    await expect(pipelineWith({ limiter }).process(brand('pipe-500', 'Acme'), RECIPE, noCheckpoint())).rejects.toMatchObject({ kind: 'transient', outcomeUnknown: false });
    const money = await new CostLedger(redis.client()).snapshot('pipe-500');
    expect(money).toMatchObject({ reservedMicros: 0, unconfirmedMicros: 0 });
    expect(money.providers.llm.costMicros).toBe(0);
    await limiter.close();
  });

  it('finishes brands of a free model (price 0) and books 0', async () => {
    const limiter = newLimiter();
    await createRun('pipe-free', 10_000, ['Acme', 'Globex']);
    const pipeline = pipelineWith({ limiter, priceOf: async () => ({ inputPerMillion: 0, outputPerMillion: 0 }), tavilyUsdPerCredit: 0 });
    openai.configure({ pricing: { inputPerMillion: 0, outputPerMillion: 0 } });
    for (const name of ['Acme', 'Globex']) await pipeline.process(brand('pipe-free', name), RECIPE, noCheckpoint());
    const run = await new RunStore(redis.client()).getRun('pipe-free');
    expect(run?.status).toBe('completed');
    expect((await new CostLedger(redis.client()).snapshot('pipe-free')).spentMicros).toBe(0);
    openai.configure({ pricing: PRICE });
    await limiter.close();
  });

  it.each([
    ['negative', -0.5],
    ['not a number', Number.NaN],
    ['infinite (a JSON number past 1e308)', Number.POSITIVE_INFINITY],
  ])('books the table price when the provider reports a cost that is %s, and keeps the paid answer', async (_what, reportedUsd) => {
    const limiter = newLimiter();
    const runId = `pipe-bad-cost-${reportedUsd}`;
    await createRun(runId, 1_000_000);
    const llm = new LlmClient({ apiKey: 'sk-test', baseURL: openai.url, model: 'gpt-4o-mini', maxOutputTokens: 400, timeoutMs: 5000 });
    const complete = llm.complete.bind(llm);
    // What OpenRouter's `usage.cost` would carry: the client passes any JSON number through.
    llm.complete = async (request, signal) => {
      const answer = await complete(request, signal);
      answer.usage.costUsd = reportedUsd;
      return answer;
    };
    await pipelineWith({ limiter, llm }).process(brand(runId, 'Acme'), RECIPE, noCheckpoint());
    const money = await new CostLedger(redis.client()).snapshot(runId);
    const { inputTokens, outputTokens } = money.providers.llm;
    expect(inputTokens).toBeGreaterThan(0);
    expect(money.providers.llm.costMicros).toBe(llmCostMicros(PRICE, inputTokens, outputTokens));
    expect(money.providers.llm.costMicros).toBeGreaterThan(0);
    expect(money).toMatchObject({ reservedMicros: 0, unconfirmedMicros: 0 });
    expect((await new RunStore(redis.client()).getRun(runId))?.status).toBe('completed');
    await limiter.close();
  });

  it.each([
    ['negative', -3],
    ['infinite', Number.POSITIVE_INFINITY],
  ])('books the search at its depth\'s credits when Tavily reports credits that are %s, and keeps the paid answer', async (_what, reportedCredits) => {
    const limiter = newLimiter();
    const runId = `pipe-bad-credits-${reportedCredits}`;
    await createRun(runId, 1_000_000);
    const search = new TavilySearchClient({ apiKey: 'tvly-test', baseUrl: tavilyFake.url, depth: 'basic', maxResults: 5, timeoutSeconds: 5 });
    const realSearch = search.search.bind(search);
    search.search = async (query, request) => ({ ...(await realSearch(query, request)), credits: reportedCredits });
    await pipelineWith({ limiter, search }).process(brand(runId, 'Acme'), RECIPE, noCheckpoint());
    const money = await new CostLedger(redis.client()).snapshot(runId);
    // A basic search is 1 credit at $0.008.
    expect(money.providers.tavily).toMatchObject({ calls: 1, credits: 1, costMicros: 8_000 });
    expect(money).toMatchObject({ reservedMicros: 0, unconfirmedMicros: 0 });
    await limiter.close();
  });

  it('books a call billed above its reservation in full, reports the overrun once, and keeps the confirmed books equal to the bill', async () => {
    const limiter = newLimiter();
    await createRun('pipe-overrun', 0, ['Acme', 'Globex']);
    // The provider bills 10x the table price (OpenRouter reports its own usage.cost).
    openai.configure({ flavor: 'openrouter', pricing: { inputPerMillion: 1.5, outputPerMillion: 6 } });
    const overruns: number[] = [];
    const observer: PipelineObserver = { ...silentObserver, overrun: (_run, provider, micros) => provider === 'llm' && overruns.push(micros) };
    const pipeline = pipelineWith({ limiter, observer, llmReserveFactor: 1 });
    await pipeline.process(brand('pipe-overrun', 'Acme'), RECIPE, noCheckpoint());
    await pipeline.process(brand('pipe-overrun', 'Globex'), RECIPE, noCheckpoint());
    const money = await new CostLedger(redis.client()).snapshot('pipe-overrun');
    expect(money.providers.llm.costMicros).toBe(openai.ledger.summary().billedMicros);
    expect(money.providers.llm.overrunMicros).toBe(overruns.reduce((a, b) => a + b, 0));
    // The second call is reserved at the raised worst case: what it overran by (if at all) is far smaller.
    expect(overruns[0]).toBeGreaterThan(0);
    expect(overruns[1] ?? 0).toBeLessThan(overruns[0]! / 4);
    openai.configure({ flavor: 'openai', pricing: PRICE });
    await limiter.close();
  });
});
