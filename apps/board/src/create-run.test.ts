import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@brandq/config';
import { createLimiter, limitsFromConfig } from '@brandq/limiter';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { RunStore } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import { createRun } from './create-run.js';
import { listenBoard } from './test-http.js';

const redis = useTestRedis();
const csvText = `brand\n${Array.from({ length: 10 }, (_, i) => `Board Brand ${i}`).join('\n')}\n`;
let queue: BrandQueue;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  queue = createBrandQueue(redis.client());
  const config = loadConfig({ REDIS_URL: redis.url });
  const client = redis.client();
  const listening = await listenBoard({ redis: client, queue, createRun: (body) => createRun({ redis: client, queue, config }, body) });
  base = listening.base;
  close = listening.close;
});
afterAll(async () => {
  await close();
  await queue.close();
});

/** A write as the board's own page sends it. */
const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}/api/runs`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('POST /api/runs', () => {
  it('refuses a malformed request with the problems named', async () => {
    const res = await post({ csvText, sheet: 'x', budget: -1 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: string[] };
    expect(body.errors.join('\n')).toMatch(/budget/);
    expect(body.errors.join('\n')).toMatch(/exactly one of csvText .* or sheet/);
  });

  it('never takes a server path: a `csv` field is refused, its value neither read nor repeated', async () => {
    const res = await post({ csv: '/proc/self/environ', budget: 1 });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ code: 'SERVER_PATH_REFUSED' });
    expect(text).toMatch(/csvText/);
    expect(text).not.toContain('/proc');
  });

  it('needs a budget: in the request, or BUDGET_USD above 0; none is refused, saying how', async () => {
    const res = await post({ csvText, run: 'board-unbounded' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe('BUDGET_REQUIRED');
    expect(body.error).toMatch(/"budget".*BUDGET_USD/);
    expect((await post({ csvText, budget: 0 })).status).toBe(400);
    expect(await new RunStore(redis.client()).getRun('board-unbounded')).toBeUndefined();

    const withDefault = loadConfig({ REDIS_URL: redis.url, BUDGET_USD: '50' });
    const answer = await createRun({ redis: redis.client(), queue, config: withDefault }, { csvText: 'brand\nDefault Budget Brand\n', run: 'board-default-budget' });
    expect(answer.status).toBe(201);
  });

  it('answers 402 BUDGET_TOO_LOW with the estimate, and enqueues nothing', async () => {
    const res = await post({ csvText, budget: 0.01, run: 'board-poor' });
    expect(res.status).toBe(402);
    const body = (await res.json()) as { code: string; estimate: { brands: number; estimatedCostMicros: number } };
    expect(body.code).toBe('BUDGET_TOO_LOW');
    expect(body.estimate.brands).toBe(10);
    expect(body.estimate.estimatedCostMicros).toBeGreaterThan(10_000);
    expect(await new RunStore(redis.client()).getRun('board-poor')).toBeUndefined();
  });

  it('creates the run from the CSV text with one job per brand when the guard passes', async () => {
    const res = await post({ csvText, run: 'board-run', budget: 50 });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ runId: 'board-run', enqueued: 10 });
    // Queued by priority: each run's place among the fleet's runs (fair shares).
    expect(await queue.getJobCountByTypes('prioritized')).toBe(11);
    expect((await new RunStore(redis.client()).getRun('board-run'))?.sourceKey).toMatch(/^csv-text:sha256:/);
  });

  it('takes the run\'s weight and its own ceiling, and GET /api/runs shows them with its share of the fleet', async () => {
    const res = await post({ csvText: 'brand\nWeighted Board Brand\nOther Board Brand\n', budget: 5, run: 'board-weighted', weight: 4, maxRpm: 30 });
    expect(res.status).toBe(201);
    expect(await new RunStore(redis.client()).getRun('board-weighted')).toMatchObject({ weight: 4, maxRpm: 30 });
    const unbounded = await post({ csvText: 'brand\nUnbounded Board Brand\n', budget: 5, run: 'board-unceiled', maxRpm: null });
    expect(unbounded.status).toBe(201);
    expect((await new RunStore(redis.client()).getRun('board-unceiled'))?.maxRpm).toBeUndefined();

    const overview = (await (await fetch(`${base}/api/runs`)).json()) as { id: string; fairShare: unknown }[];
    expect(overview.find((r) => r.id === 'board-weighted')?.fairShare).toEqual({ weight: 4, maxRpm: 30, measuredShare: 0, calls: 0, done: 0, windowMs: expect.any(Number), etaSeconds: null });
    expect(overview.find((r) => r.id === 'board-unceiled')?.fairShare).toMatchObject({ weight: 1, maxRpm: null });
  });

  it('refuses a bad weight or ceiling (400 BAD_INPUT, saying what is wrong): no run is created', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ weight: 0 }, /^weight must be at least 1$/],
      [{ weight: 2.5 }, /^weight must be a whole number$/],
      [{ weight: 1001 }, /^weight must be at most 1000$/],
      [{ weight: '2' }, /^weight must be a number$/],
      [{ weight: true }, /^weight must be a number$/],
      [{ maxRpm: 0 }, /^max rpm must be at least 1/],
      [{ maxRpm: 'fast' }, /^maxRpm must be a number, or null for no ceiling$/],
    ];
    for (const [share, message] of cases) {
      const res = await post({ csvText: 'brand\nBad Share Brand\n', budget: 5, run: 'board-bad-share', ...share });
      expect(res.status, JSON.stringify(share)).toBe(400);
      expect(await res.json()).toEqual({ code: 'BAD_INPUT', message: expect.stringMatching(message) });
    }
    expect(await new RunStore(redis.client()).getRun('board-bad-share')).toBeUndefined();
  });

  it('follows the recipe sent as text, stored with the run; a recipe that does not validate is refused naming its step and field', async () => {
    const recipe = [
      'name: tagline',
      'steps:',
      '  - id: tag',
      '    type: llm',
      '    prompt: "Brand: {{brand}}"',
      '    fields: [{ name: tagline, type: string, description: a tagline }]',
    ].join('\n');
    const created = await post({ csvText: 'brand\nRecipe Board Brand\n', budget: 5, run: 'board-recipe', recipe });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ runId: 'board-recipe', recipe: 'tagline' });
    expect((await new RunStore(redis.client()).getRecipe('board-recipe')).steps.map((s) => s.id)).toEqual(['tag']);

    const bad = await post({ csvText: 'brand\nBad Recipe Brand\n', budget: 5, run: 'board-bad-recipe', recipe: recipe.replace('type: string', 'type: strnig') });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/step "tag", field "tagline"/);
    expect(await new RunStore(redis.client()).getRun('board-bad-recipe')).toBeUndefined();
  });

  it('refuses a CSV without a brand (400 BAD_INPUT): no empty run is created', async () => {
    const res = await post({ csvText: 'brand\n', budget: 5, run: 'board-empty' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/no brands in the CSV text/) });
    expect(await new RunStore(redis.client()).getRun('board-empty')).toBeUndefined();
  });

  it('refuses a body over the limit (413), malformed JSON (400) and other media types (415) in JSON, quoting none of it', async () => {
    const big = await post({ csvText: `brand\n${'Oversized Brand Name\n'.repeat(60_000)}`, budget: 1 });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', error: expect.stringMatching(/over the limit of 1024 KiB/) as string });
    const malformed = await post('{"csvText": "brand\\nUNIQUE-MARKER-77", budget');
    expect(malformed.status).toBe(400);
    const text = await malformed.text();
    expect(JSON.parse(text)).toEqual({ code: 'MALFORMED_JSON', error: 'the request body is not valid JSON' });
    expect(text).not.toContain('UNIQUE-MARKER-77');
    const csv = await post('brand\nAcme\n', { 'content-type': 'text/csv' });
    expect(csv.status).toBe(415);
    expect(csv.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('answers 503 BATCH_RATE_LIMITED with a suggested wait while a provider is in cooldown', async () => {
    const limiter = createLimiter({ redis: redis.client(), providers: limitsFromConfig(loadConfig({})) });
    await limiter.cooldown('llm', { retryAfterMs: 30_000 });
    const res = await post({ csvText, run: 'board-cooldown', force: true, budget: 50 });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(25);
    expect(await res.json()).toMatchObject({ code: 'BATCH_RATE_LIMITED' });
  });
});
