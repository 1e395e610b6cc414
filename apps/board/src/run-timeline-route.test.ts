import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CostLedger } from '@brandq/ledger';
import { createBrandQueue, type BrandJobData, type BrandQueue } from '@brandq/queue';
import { RunStore, RunTimeline } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import { boardHosts } from './allowed-hosts.js';
import { createBoardApp } from './board-app.js';
import { rawRequest } from './test-http.js';

const redis = useTestRedis();
const auth = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };

let queue: BrandQueue;
let server: Server;
let base: string;

beforeAll(async () => {
  queue = createBrandQueue(redis.client());
  let hosts = new Set<string>();
  const app = createBoardApp({
    redis: redis.client(),
    queue,
    readOnly: true,
    credentials: { user: 'ops', password: 'pw' },
    isAllowedHost: (host) => hosts.has(host),
    limiterStats: async () => ({}),
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  hosts = boardHosts('127.0.0.1', port);
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await queue?.close();
});

const source = { type: 'csv' as const, path: '/tmp/timeline-route.csv' };

/** A run of `n` brands, `done` of them succeeded, with `spentMicros` booked in its ledger and on its timeline. */
async function runWith(runId: string, n: number, done: number, spentMicros: number, budgetMicros: number): Promise<void> {
  const client = redis.client();
  const runs = new RunStore(client);
  const brands: BrandJobData[] = Array.from({ length: n }, (_, i) => ({ runId, key: `b${i}`, name: `B${i}`, rowNumber: i + 2, hints: {}, source }));
  await runs.createOrExtendRun({ id: runId, source, sourceKey: `csv:${runId}`, brands, skipped: [] });
  const ledger = new CostLedger(client);
  await ledger.setBudget(runId, budgetMicros);
  await ledger.settle(await ledger.reserve(runId, 'llm', spentMicros), { costMicros: spentMicros });
  await new RunTimeline(client).record(runId, { spentMicros });
  for (const b of brands.slice(0, done)) await runs.recordSuccess({ runId, key: b.key, brand: b.name, rowNumber: b.rowNumber, processedAt: 'now', fields: {} });
}

async function timelineOf(runId: string) {
  const answer = await rawRequest(base, `/api/runs/${runId}/timeline`, { headers: auth });
  return { status: answer.status, body: JSON.parse(answer.body) as Record<string, unknown> };
}

describe('GET /api/runs/:id/timeline', () => {
  it("answers the run's buckets with the spend summed, its budget, and the spend projected from the recent spend per brand", async () => {
    await runWith('route-running', 10, 2, 3_000, 50_000);
    const { status, body } = await timelineOf('route-running');
    expect(status).toBe(200);
    expect(body).toMatchObject({ bucketMs: 10_000, budgetMicros: 50_000 });
    const points = body.points as { t: number; done: number; spentMicros: number; waits: Record<string, number> }[];
    expect(points).toHaveLength(1);
    expect(points[0]).toEqual({ t: body.startMs, done: 2, failed: 0, spentMicros: 3_000, rateLimited: 0, waits: { requests: 0, tokens: 0, concurrency: 0, stagger: 0, cooldown: 0 } });
    // 8 brands left at 1,500 each.
    expect(body.projectedSpendMicros).toBe(3_000 + 8 * 1_500);
  });

  it('projects no more spend for a cancelled run', async () => {
    await runWith('route-cancelled', 10, 2, 3_000, 0);
    await new RunStore(redis.client()).setStatus('route-cancelled', 'cancelled');
    expect((await timelineOf('route-cancelled')).body).toMatchObject({ budgetMicros: 0, projectedSpendMicros: 3_000 });
  });

  it('answers 404 for a run that does not exist or an id no run can have, and asks for the credentials', async () => {
    expect(await timelineOf('no-such-run')).toEqual({ status: 404, body: { code: 'NOT_FOUND', error: 'no such run' } });
    expect((await timelineOf('bad%20id')).status).toBe(404);
    expect((await rawRequest(base, '/api/runs/route-running/timeline')).status).toBe(401);
  });
});
