import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@brandq/config';
import { createLimiter, limitsFromConfig } from '@brandq/limiter';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { RunStore } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import { createBoardApp } from './board-app.js';
import { createRun } from './create-run.js';

const redis = useTestRedis();
let queue: BrandQueue;
let csv: string;
let base: string;
let server: Server;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'brandq-board-run-'));
  csv = join(dir, 'brands.csv');
  await writeFile(csv, `brand\n${Array.from({ length: 10 }, (_, i) => `Board Brand ${i}`).join('\n')}\n`);
  queue = createBrandQueue(redis.client());
  const config = loadConfig({ REDIS_URL: redis.url });
  const client = redis.client();
  const app = createBoardApp({
    redis: client,
    queue,
    readOnly: false,
    limiterStats: async () => ({}),
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    createRun: (body) => createRun({ redis: client, queue, config }, body),
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await queue.close();
});

const post = (body: unknown) => fetch(`${base}/api/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('POST /api/runs', () => {
  it('refuses a malformed request with the problems named', async () => {
    const res = await post({ csv: csv, sheet: 'x', budget: -1 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: string[] };
    expect(body.errors.join('\n')).toMatch(/budget/);
    expect(body.errors.join('\n')).toMatch(/exactly one of csv or sheet/);
  });

  it('answers 402 BUDGET_TOO_LOW with the estimate, and enqueues nothing', async () => {
    const res = await post({ csv, budget: 0.01, run: 'board-poor' });
    expect(res.status).toBe(402);
    const body = (await res.json()) as { code: string; estimate: { brands: number; estimatedCostMicros: number } };
    expect(body.code).toBe('BUDGET_TOO_LOW');
    expect(body.estimate.brands).toBe(10);
    expect(body.estimate.estimatedCostMicros).toBeGreaterThan(10_000);
    expect(await new RunStore(redis.client()).getRun('board-poor')).toBeUndefined();
  });

  it('creates the run with one job per brand when the guard passes', async () => {
    const res = await post({ csv, run: 'board-run' });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ runId: 'board-run', enqueued: 10 });
    expect(await queue.getJobCountByTypes('waiting')).toBe(10);
  });

  it('answers 503 BATCH_RATE_LIMITED with a suggested wait while a provider is in cooldown', async () => {
    const limiter = createLimiter({ redis: redis.client(), providers: limitsFromConfig(loadConfig({})) });
    await limiter.cooldown('llm', { retryAfterMs: 30_000 });
    const res = await post({ csv, run: 'board-cooldown', force: true });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(25);
    expect(await res.json()).toMatchObject({ code: 'BATCH_RATE_LIMITED' });
  });

  it('answers 200 NOTHING_TO_DO and creates no run when every brand already has a result', async () => {
    const runs = new RunStore(redis.client());
    for await (const b of runs.brands('board-run')) {
      await runs.recordSuccess({ runId: 'board-run', key: b.key, brand: b.name, rowNumber: b.rowNumber, processedAt: 'now', website: null, category: null, description: null, country: null, founded_year: null, sources: [] });
    }
    const res = await post({ csv, run: 'board-again' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ code: 'NOTHING_TO_DO', message: 'nothing to do: all 10 brands already have results in run board-run (use --force to redo)' });
    expect(await runs.getRun('board-again')).toBeUndefined();
  });
});
