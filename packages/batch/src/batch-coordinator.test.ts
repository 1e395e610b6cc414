import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAIServer } from '@brandq/fakes';
import { CostLedger, type ModelPrice } from '@brandq/ledger';
import { chatRequestBody, type JsonSchemaFormat } from '@brandq/llm';
import { brandJobId, createBrandQueue, type BrandJobData, type BrandQueue } from '@brandq/queue';
import { RunStore } from '@brandq/runs';
import { batchKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { BatchApi } from './batch-api.js';
import { BatchCoordinator, type BatchCoordinatorOptions } from './batch-coordinator.js';
import { BatchDesk } from './batch-desk.js';
import { batchRequestId } from './batch-request.js';

/**
 * The batch coordinator against the fake OpenAI's Files and Batches API (a real SDK over
 * HTTP) and a real Redis: what it sends, books and hands back is checked against the
 * fake's own ledger of batches and bills.
 */

const redis = useTestRedis();
const PRICE: ModelPrice = { inputPerMillion: 0.15, outputPerMillion: 0.6 };
const MODEL = 'gpt-4o-mini';
/** The recipe fingerprint the requests were asked under. */
const FP = 'f'.repeat(64);
let openai: FakeOpenAIServer;
let queue: BrandQueue;

beforeAll(async () => {
  openai = await startFakeOpenAI({ batchDelayMs: 200 });
  queue = createBrandQueue(redis.client());
});
afterAll(async () => {
  await queue.close();
  await openai.close();
});
beforeEach(async () => {
  openai.reset();
  await redis.flush();
});

const format: JsonSchemaFormat = {
  type: 'json_schema',
  json_schema: { name: 'facts', strict: true, schema: { type: 'object', properties: { tagline: { type: 'string' } }, required: ['tagline'], additionalProperties: false } },
};

function brandOf(runId: string, i: number): BrandJobData {
  const name = `Brand ${i}`;
  return { runId, key: `brand ${i}`, name, rowNumber: i + 2, hints: {}, source: { type: 'csv', path: '/b.csv' } };
}

/** A run of `n` brands, each with its extraction request parked as a batch-tier step would park it. */
async function parkedRun(runId: string, n: number): Promise<BrandJobData[]> {
  const client = redis.client();
  const brands = Array.from({ length: n }, (_, i) => brandOf(runId, i));
  await new RunStore(client).createOrExtendRun({ id: runId, source: brands[0]!.source, sourceKey: `csv:${runId}`, brands, skipped: [] });
  const desk = new BatchDesk(client);
  for (const brand of brands) {
    const body = chatRequestBody({ model: MODEL, messages: [{ role: 'user', content: `Brand: ${brand.name}` }], maxOutputTokens: 100, temperature: 0, responseFormat: format });
    await desk.park(runId, { customId: batchRequestId('extract', 0, FP, brand.key), brandKey: brand.key, step: 'extract', model: MODEL, body, tokens: 120, worstCaseMicros: 100, attempt: 0 });
    await queue.add('brand', brand, { jobId: brandJobId(runId, brand.key), delay: 3_600_000 });
  }
  return brands;
}

function coordinator(over: Partial<BatchCoordinatorOptions> = {}): BatchCoordinator {
  const client = redis.client();
  return new BatchCoordinator({
    redis: client,
    api: new BatchApi({ apiKey: 'sk-test', baseURL: openai.url }),
    runs: new RunStore(client),
    ledger: new CostLedger(client, 25 * 3600_000),
    queue,
    priceOf: async () => PRICE,
    maxRequests: 50_000,
    maxBytes: 200 * 1024 * 1024,
    gatherMs: 0,
    pollMs: 50,
    queueTokens: 1_000_000,
    requestAttempts: 3,
    leaseMs: 5_000,
    ...over,
  });
}

/**
 * A coordinator that creates its batch at the provider and dies before writing it down:
 * its connection goes, its lease is no longer renewed and runs out. `meanwhile` happens
 * after its death, before the next coordinator may take over.
 */
async function killedAfterCreatingBatch(meanwhile?: () => Promise<unknown>): Promise<void> {
  const api = new BatchApi({ apiKey: 'sk-test', baseURL: openai.url });
  const dying = Object.create(api) as BatchApi;
  dying.create = async (...args: Parameters<BatchApi['create']>) => {
    await api.create(...args);
    throw new Error('killed after create');
  };
  const doomed = redis.client();
  const first = coordinator({ api: dying, redis: doomed, leaseMs: 300 });
  for (let i = 0; i < 10 && openai.ledger.batches().length === 0; i++) await first.runOnce().catch(() => undefined);
  doomed.disconnect();
  await meanwhile?.();
  const admin = redis.client();
  for (let i = 0; i < 100 && (await admin.exists(batchKeys.lease)) === 1; i++) await new Promise((r) => setTimeout(r, 20));
  expect(await admin.exists(batchKeys.lease), 'the dead coordinator\'s lease ran out').toBe(0);
}

/** Passes until every request of the run has an outcome (or `maxPasses` ran out). */
async function settle(c: BatchCoordinator, runId: string, brands: readonly BrandJobData[], maxPasses = 200): Promise<void> {
  const desk = new BatchDesk(redis.client());
  for (let pass = 0; pass < maxPasses; pass++) {
    await c.runOnce();
    const outcomes = await Promise.all(brands.map((b) => desk.outcomeOf(runId, batchRequestId('extract', 0, FP, b.key))));
    if (outcomes.every((o) => o !== undefined)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the batch never finished');
}

describe('batch coordinator', () => {
  it('sends parked requests as one batch, books what the results file says at the batch price, hands each answer back and wakes its job', async () => {
    const brands = await parkedRun('batch-one', 6);
    const c = coordinator();
    await settle(c, 'batch-one', brands);
    const batches = openai.ledger.batches();
    expect(batches).toHaveLength(1);
    expect(batches[0]?.lineCount).toBe(6);
    const desk = new BatchDesk(redis.client());
    for (const b of brands) expect((await desk.outcomeOf('batch-one', batchRequestId('extract', 0, FP, b.key)))?.kind).toBe('answered');
    const money = await new CostLedger(redis.client()).snapshot('batch-one');
    const billed = openai.ledger.tierTotals().batch;
    expect(billed.paidCalls).toBe(6);
    expect(money.providers.llm.costMicros).toBe(billed.billedMicros);
    expect(money.providers.llm.calls).toBe(6);
    expect(money.reservedMicros).toBe(0);
    expect(openai.ledger.tierTotals().standard.paidCalls).toBe(0);
    // Every parked job was woken: none is still delayed.
    expect(await queue.getDelayedCount()).toBe(0);
    await c.stop();
  });

  it('parks a request once over its whole life: a job looking again while its request is in a batch sends nothing new', async () => {
    const brands = await parkedRun('batch-once', 3);
    const c = coordinator();
    // Claimed into a batch and on its way to the provider...
    for (let i = 0; i < 5 && openai.ledger.batches().length === 0; i++) await c.runOnce();
    expect(openai.ledger.batches()).toHaveLength(1);
    // ...while every job comes back (its recheck) and parks its request again.
    const desk = new BatchDesk(redis.client());
    const body = chatRequestBody({ model: MODEL, messages: [{ role: 'user', content: 'Brand: again' }], maxOutputTokens: 100, temperature: 0, responseFormat: format });
    for (const b of brands) {
      await desk.park('batch-once', { customId: batchRequestId('extract', 0, FP, b.key), brandKey: b.key, step: 'extract', model: MODEL, body, tokens: 120, worstCaseMicros: 100, attempt: 0 });
    }
    expect(await redis.client().hlen('brandq:{run:batch-once}:batch-pending')).toBe(0);
    await settle(c, 'batch-once', brands);
    expect(openai.ledger.batches()).toHaveLength(1);
    expect(openai.ledger.batchCustomIdsBilledTwice()).toEqual([]);
    await c.stop();
  });

  it('splits a run step into batches within the per-file request limit and the queued-token limit', async () => {
    const brands = await parkedRun('batch-split', 7);
    // 3 requests per file, and at most 4 requests' tokens (120 each) queued at once.
    const c = coordinator({ maxRequests: 3, queueTokens: 480 });
    await settle(c, 'batch-split', brands);
    const sizes = openai.ledger.batches().map((b) => b.lineCount);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(7);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    expect(openai.ledger.batchCustomIdsInSeveralBatches()).toEqual([]);
    await c.stop();
  });

  it('never submits a batch twice: a coordinator killed after creating it, before writing it down, is replaced by one that adopts it', async () => {
    const brands = await parkedRun('batch-crash', 4);
    await killedAfterCreatingBatch();
    expect(openai.ledger.batches()).toHaveLength(1);
    const next = coordinator();
    await settle(next, 'batch-crash', brands);
    expect(openai.ledger.batches()).toHaveLength(1);
    expect(openai.ledger.batchCustomIdsBilledTwice()).toEqual([]);
    const money = await new CostLedger(redis.client()).snapshot('batch-crash');
    expect(money.providers.llm.costMicros).toBe(openai.ledger.tierTotals().batch.billedMicros);
    await next.stop();
  });

  it('adopts the batch a killed coordinator created even when the run was cancelled meanwhile: cancelled at the provider, what it billed booked', async () => {
    await parkedRun('batch-crash-cancel', 4);
    await killedAfterCreatingBatch(() => new RunStore(redis.client()).setStatus('batch-crash-cancel', 'cancelled', 'test'));
    const next = coordinator();
    for (let i = 0; i < 100 && (await redis.client().zcard('brandq:batch:open')) > 0; i++) {
      await next.runOnce();
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(openai.ledger.batches()).toHaveLength(1);
    expect(openai.ledger.batches()[0]?.status).toMatch(/cancell|completed/);
    const money = await new CostLedger(redis.client()).snapshot('batch-crash-cancel');
    expect(money.providers.llm.costMicros).toBe(openai.ledger.tierTotals().batch.billedMicros);
    expect(money.reservedMicros).toBe(0);
    await next.stop();
  });

  it('a coordinator that lost its lease while collecting writes nothing its successor already wrote', async () => {
    const brands = await parkedRun('batch-stale', 3);
    openai.injectBatchLineFailures({ customIds: [batchRequestId('extract', 0, FP, brands[1]!.key)] });
    // A stalls while reading the results file...
    const api = new BatchApi({ apiKey: 'sk-test', baseURL: openai.url });
    const stalling = Object.create(api) as BatchApi;
    let resume: () => void = () => undefined;
    const stalled = new Promise<void>((r) => (resume = r));
    let reading = false;
    stalling.lines = async (...args: Parameters<BatchApi['lines']>) => {
      reading = true;
      await stalled;
      return api.lines(...args);
    };
    const a = coordinator({ api: stalling, leaseMs: 300 });
    // One pass at a time, as its loop runs them, until a pass stalls reading the results.
    let pass: Promise<void> = Promise.resolve();
    let passing = false;
    for (let i = 0; i < 100 && !reading; i++) {
      if (!passing) {
        passing = true;
        pass = a.runOnce().finally(() => (passing = false));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(reading).toBe(true);
    // ...and loses its lease (as behind a partition): another holder shows up, A's renewal
    // sees it and stops; when that lease lapses B takes over and finishes the run.
    await redis.client().set(batchKeys.lease, 'elsewhere:partition', 'PX', 300);
    const b = coordinator();
    await settle(b, 'batch-stale', brands);
    // A wakes up and collects what B collected already: nothing is written again.
    resume();
    await pass;
    expect(await redis.client().hlen('brandq:{run:batch-stale}:batch-pending')).toBe(0);
    expect(openai.ledger.batches()).toHaveLength(2);
    expect(openai.ledger.batchCustomIdsBilledTwice()).toEqual([]);
    const money = await new CostLedger(redis.client()).snapshot('batch-stale');
    expect(money.providers.llm.costMicros).toBe(openai.ledger.tierTotals().batch.billedMicros);
    await a.stop();
    await b.stop();
  });

  it('sends failed lines again in a later batch, and fails a request for good after its attempts, with the reason', async () => {
    const brands = await parkedRun('batch-retry', 3);
    const ids = brands.map((b) => batchRequestId('extract', 0, FP, b.key));
    openai.injectBatchLineFailures({ customIds: [ids[0]!] });
    const c = coordinator({ requestAttempts: 2 });
    await settle(c, 'batch-retry', brands);
    const desk = new BatchDesk(redis.client());
    expect((await desk.outcomeOf('batch-retry', ids[0]!))?.kind).toBe('answered');
    expect(openai.ledger.batches()).toHaveLength(2);

    const again = await parkedRun('batch-fail', 2);
    const failing = batchRequestId('extract', 0, FP, again[0]!.key);
    openai.injectBatchLineFailures({ customIds: [failing], count: 2 });
    openai.injectBatchLineFailures({ customIds: [failing] });
    await settle(c, 'batch-fail', again);
    const outcome = await desk.outcomeOf('batch-fail', failing);
    expect(outcome).toMatchObject({ kind: 'failed', attempts: 2 });
    // Failed lines are not billed, and nothing of theirs is booked.
    const money = await new CostLedger(redis.client()).snapshot('batch-fail');
    expect(money.providers.llm.calls).toBe(1);
    expect(money.reservedMicros).toBe(0);
    await c.stop();
  });

  it('holds a run whose budget cannot cover a request: nothing is sent, its requests wait parked for a raised budget', async () => {
    const brands = await parkedRun('batch-budget', 5);
    // Each request holds its worst case, 100 micro-dollars, before its batch may go out.
    await new CostLedger(redis.client()).setBudget('batch-budget', 50);
    const c = coordinator();
    for (let i = 0; i < 3; i++) await c.runOnce();
    expect(openai.ledger.batches()).toEqual([]);
    expect((await new RunStore(redis.client()).getRun('batch-budget'))?.status).toBe('budget_exhausted');
    expect(await redis.client().hlen('brandq:{run:batch-budget}:batch-pending')).toBe(brands.length);
    expect((await new CostLedger(redis.client()).snapshot('batch-budget')).reservedMicros).toBe(0);
    await c.stop();
  });

  it("cancels a cancelled run's open batch and gives back the budget held for what it did not answer", async () => {
    openai.reset();
    await parkedRun('batch-cancel', 5);
    const c = coordinator();
    for (let i = 0; i < 20 && !openai.ledger.batches().some((b) => b.status === 'in_progress' || b.status === 'validating'); i++) await c.runOnce();
    await new RunStore(redis.client()).setStatus('batch-cancel', 'cancelled', 'test');
    for (let i = 0; i < 50 && (await redis.client().zcard('brandq:batch:open')) > 0; i++) {
      await c.runOnce();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(openai.ledger.batches()[0]?.status).toMatch(/cancell/);
    const money = await new CostLedger(redis.client()).snapshot('batch-cancel');
    expect(money.reservedMicros).toBe(0);
    expect(money.providers.llm.costMicros).toBe(openai.ledger.tierTotals().batch.billedMicros);
    await c.stop();
  });
});
