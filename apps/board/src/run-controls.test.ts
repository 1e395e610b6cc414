import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@brandq/config';
import { CostLedger } from '@brandq/ledger';
import { brandJobId, createBrandQueue, type BrandJobData, type BrandQueue } from '@brandq/queue';
import { runControls, type RunDetail } from '@brandq/run-service';
import { RunStore, type RunHistoryEntry, type RunMeta } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import { listenBoard } from './test-http.js';

const redis = useTestRedis();
let queue: BrandQueue;
const closers: (() => Promise<void>)[] = [];

/** A board on its own port: with basic auth (user `ops`) unless `open`, read-only when asked. */
async function serve(board: { readOnly: boolean; open?: boolean }): Promise<string> {
  const client = redis.client();
  const listening = await listenBoard({
    redis: client,
    queue,
    readOnly: board.readOnly,
    credentials: board.open ? undefined : { user: 'ops', password: 'pw' },
    runControls: runControls({ redis: client, queue, config: loadConfig({ REDIS_URL: redis.url }) }),
  });
  closers.push(listening.close);
  return listening.base;
}

let board: string;
let readOnlyBoard: string;
let openBoard: string;
beforeAll(async () => {
  queue = createBrandQueue(redis.client());
  [board, readOnlyBoard, openBoard] = await Promise.all([serve({ readOnly: false }), serve({ readOnly: true }), serve({ readOnly: false, open: true })]);
});
afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  await queue.close();
});
beforeEach(() => redis.flush());

const auth = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };

/** A control as the run's page sends it: same origin, JSON, with the credentials. */
function control(base: string, runId: string, action: string, body: unknown = {}, headers: Record<string, string> = {}) {
  return fetch(`${base}/api/runs/${runId}/${action}`, { method: 'POST', headers: { ...auth, origin: base, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

interface Controlled {
  run: RunMeta;
  history: RunHistoryEntry[];
}

async function ok(pending: Promise<Response>): Promise<Controlled> {
  const res = await pending;
  const body = (await res.json()) as Controlled;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

const runs = () => new RunStore(redis.client());
const ledger = () => new CostLedger(redis.client());
const brand = (runId: string, key: string): BrandJobData => ({ runId, key, name: key.toUpperCase(), rowNumber: 2, hints: {}, source: { type: 'csv', path: `/tmp/${runId}.csv` } });

async function newRun(runId: string, keys: string[], budgetMicros = 1_000_000): Promise<void> {
  const written = await runs().createOrExtendRun({ id: runId, source: brand(runId, 'x').source, sourceKey: `csv:/tmp/${runId}.csv`, brands: keys.map((k) => brand(runId, k)), skipped: [] });
  expect(written.kind).toBe('written');
  await ledger().setBudget(runId, budgetMicros);
}

const addJob = (runId: string, key: string, opts: { delay?: number; priority?: number } = {}) => queue.add('brand', brand(runId, key), { jobId: brandJobId(runId, key), ...opts });
const statesOf = (runId: string, keys: string[]) => Promise.all(keys.map((k) => queue.getJobState(brandJobId(runId, k))));

describe('run controls over HTTP', () => {
  it('pause, then resume: the status workers read flips, parked jobs are promoted, and each step is in the history with the user', async () => {
    await newRun('http-pause', ['a', 'b']);
    const paused = await ok(control(board, 'http-pause', 'pause'));
    expect(paused.run).toMatchObject({ id: 'http-pause', status: 'paused', statusReason: 'paused by ops' });
    expect(paused.history).toEqual([{ at: expect.any(String), action: 'pause', by: 'ops', details: {} }]);
    // What the processor reads before taking a brand of the run: a paused run's jobs are parked.
    expect((await runs().getRun('http-pause'))?.status).toBe('paused');

    // Jobs parked while paused (delayed for the processor's recheck).
    await addJob('http-pause', 'a', { delay: 60_000 });
    await addJob('http-pause', 'b', { delay: 60_000 });
    const resumed = await ok(control(board, 'http-pause', 'resume'));
    expect(resumed.run.status).toBe('running');
    expect(resumed.history.map((h) => `${h.action} by ${h.by}`)).toEqual(['resume by ops', 'pause by ops']);
    // Promoted to their place among the fleet's runs (a priority: fair shares).
    expect(await statesOf('http-pause', ['a', 'b'])).toEqual(['prioritized', 'prioritized']);
  });

  it("cancel removes the run's queued jobs (the other runs' stay) and ends it cancelled", async () => {
    await newRun('http-cancel', ['a', 'b', 'c', 'd']);
    await newRun('http-keep', ['a']);
    await addJob('http-cancel', 'a');
    await addJob('http-cancel', 'b', { delay: 60_000 });
    await addJob('http-cancel', 'c', { priority: 3 });
    await addJob('http-keep', 'a');
    expect(await queue.getJobCounts('waiting', 'delayed', 'prioritized')).toEqual({ waiting: 2, delayed: 1, prioritized: 1 });

    // The page may post no body at all.
    const res = await fetch(`${board}/api/runs/http-cancel/cancel`, { method: 'POST', headers: { ...auth, origin: board } });
    const cancelled = (await res.json()) as Controlled;
    expect(res.status).toBe(200);
    expect(cancelled.run).toMatchObject({ status: 'cancelled', statusReason: 'cancelled by ops' });
    expect(cancelled.history[0]).toMatchObject({ action: 'cancel', by: 'ops', details: { from: 'running', removedJobs: 3, activeJobs: 0 } });
    expect(await queue.getJobCounts('waiting', 'delayed', 'prioritized')).toEqual({ waiting: 1, delayed: 0, prioritized: 0 });
    expect(await statesOf('http-keep', ['a'])).toEqual(['waiting']);
  });

  it('raising the budget of a run held for its budget resumes it; resume alone is refused while the budget is spent', async () => {
    await newRun('http-budget', ['a', 'b'], 1_000_000);
    await ledger().book('http-budget', 'llm', { costMicros: 1_000_000 });
    await runs().markBudgetExhausted('http-budget', (await ledger().snapshot('http-budget')).budgetEpoch, 'budget reached');
    await addJob('http-budget', 'a', { delay: 60_000 });

    const refused = await control(board, 'http-budget', 'resume');
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({ code: 'BUDGET_STILL_EXHAUSTED', error: 'run http-budget is held for its budget, which is spent: raise the budget to resume it' });

    const raised = await ok(control(board, 'http-budget', 'budget', { budgetUsd: 2.5 }));
    expect(raised.run.status).toBe('running');
    expect(raised.history[0]).toMatchObject({ action: 'budget', by: 'ops', details: { budgetMicros: 2_500_000, previousBudgetMicros: 1_000_000, resumed: true, requeued: 2 } });
    expect((await ledger().snapshot('http-budget')).budgetMicros).toBe(2_500_000);
    expect(await statesOf('http-budget', ['a', 'b'])).toEqual(['prioritized', 'prioritized']);
  });

  it('retries the failed brands of one group', async () => {
    await newRun('http-retry', ['a', 'b', 'c']);
    const fail = (key: string, reason: string) => runs().recordFailure({ runId: 'http-retry', key, brand: key, rowNumber: 2, kind: 'bad_output', reason, attempts: 1, failedAt: new Date().toISOString() });
    await fail('a', 'no website');
    await fail('b', 'no website');
    await fail('c', 'schema mismatch');
    const retried = await ok(control(board, 'http-retry', 'retry', { kind: 'bad_output', reason: 'no website' }));
    expect(retried.run).toMatchObject({ status: 'running', failed: 1 });
    expect(retried.history[0]).toMatchObject({ action: 'retry', by: 'ops', details: { kind: 'bad_output', reason: 'no website', reopened: 2, requeued: 2 } });
    expect(await statesOf('http-retry', ['a', 'b', 'c'])).toEqual(['prioritized', 'prioritized', 'unknown']);

    const none = await control(board, 'http-retry', 'retry', { reason: 'timeout' });
    expect(none.status).toBe(409);
    expect(await none.json()).toMatchObject({ code: 'NO_FAILURES' });
  });

  it("share sets the run's weight and lifts its ceiling: its queued jobs take their new place, and GET /api/runs/:id and the history show it", async () => {
    await newRun('http-share', ['a', 'b', 'c']);
    expect(await runs().setShare('http-share', { weight: 1, maxRpm: 60 })).toBe(true);
    for (const key of ['a', 'b', 'c']) await addJob('http-share', key, { priority: 100 });

    const shared = await ok(control(board, 'http-share', 'share', { weight: 4, maxRpm: null }));
    expect(shared.run).toMatchObject({ id: 'http-share', status: 'running', weight: 4 });
    expect(shared.run.maxRpm).toBeUndefined();
    expect(shared.history[0]).toMatchObject({ action: 'share', by: 'ops', details: { from: { weight: 1, maxRpm: 60 }, weight: 4, maxRpm: null, retagged: 3 } });
    expect(await statesOf('http-share', ['a', 'b', 'c'])).toEqual(['prioritized', 'prioritized', 'prioritized']);

    const ceiling = await ok(control(board, 'http-share', 'share', { maxRpm: 30 }));
    expect(ceiling.run).toMatchObject({ weight: 4, maxRpm: 30 });
    expect(ceiling.history[0]).toMatchObject({ action: 'share', details: { weight: 4, maxRpm: 30, retagged: 0 } });

    const res = await fetch(`${board}/api/runs/http-share`, { headers: auth });
    expect(res.status).toBe(200);
    const detail = (await res.json()) as RunDetail;
    expect(detail.fairShare).toMatchObject({ weight: 4, maxRpm: 30, measuredShare: 0, etaSeconds: null });
    expect(detail.history.map((h) => `${h.action} by ${h.by}`)).toEqual(['share by ops', 'share by ops']);
  });

  it('refuses a share that is not one (400, naming what is wrong), changing nothing', async () => {
    await newRun('http-bad-share', ['a']);
    const bodies: [unknown, RegExp][] = [
      [{ weight: 0 }, /weight: weight must be at least 1/],
      [{ weight: 1.5 }, /weight: weight must be a whole number/],
      [{ weight: 1001 }, /weight: weight must be at most 1000/],
      [{ weight: '2' }, /weight: weight must be a number/],
      [{ maxRpm: 0 }, /maxRpm: max rpm must be at least 1/],
      [{ maxRpm: '60' }, /maxRpm: maxRpm must be a number, or null to lift the ceiling/],
      [{}, /give weight, maxRpm \(null lifts the ceiling\) or both/],
      [{ weight: 2, priority: 1 }, /priority/],
    ];
    for (const [body, error] of bodies) {
      const res = await control(board, 'http-bad-share', 'share', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toEqual({ code: 'BAD_REQUEST', error: expect.stringMatching(error) });
    }
    expect((await runs().getRun('http-bad-share'))?.weight).toBeUndefined();
    expect(await runs().history('http-bad-share')).toEqual([]);
  });

  it('records the user as anonymous on a board without auth', async () => {
    await newRun('http-anon', ['a']);
    const paused = await ok(control(openBoard, 'http-anon', 'pause', {}, { authorization: '' }));
    expect(paused.history[0]).toMatchObject({ action: 'pause', by: 'anonymous' });
  });
});

describe('run controls follow the board write rules', () => {
  const ROUTES: Array<[string, unknown]> = [
    ['pause', {}],
    ['resume', {}],
    ['cancel', {}],
    ['budget', { budgetUsd: 5 }],
    ['retry', {}],
    ['share', { weight: 2 }],
  ];

  it('a read-only board refuses every control (405, as every write of a read-only board), changing nothing', async () => {
    await newRun('http-ro', ['a']);
    await addJob('http-ro', 'a');
    for (const [action, body] of ROUTES) {
      const res = await control(readOnlyBoard, 'http-ro', action, body);
      expect(res.status, action).toBe(405);
      expect(await res.json()).toMatchObject({ code: 'READ_ONLY' });
    }
    expect(await runs().getRun('http-ro')).toMatchObject({ status: 'running' });
    expect((await ledger().snapshot('http-ro')).budgetMicros).toBe(1_000_000);
    expect(await statesOf('http-ro', ['a'])).toEqual(['waiting']);
    expect((await runs().getRun('http-ro'))?.weight).toBeUndefined();
    expect(await runs().history('http-ro')).toEqual([]);
  });

  it('without credentials (401), from another origin (403) or as text/plain (415), nothing happens', async () => {
    await newRun('http-guard', ['a']);
    const noAuth = await fetch(`${board}/api/runs/http-guard/pause`, { method: 'POST', headers: { origin: board, 'content-type': 'application/json' }, body: '{}' });
    expect(noAuth.status).toBe(401);
    const crossOrigin = await control(board, 'http-guard', 'pause', {}, { origin: 'http://evil.example' });
    expect(crossOrigin.status).toBe(403);
    expect(await crossOrigin.json()).toMatchObject({ code: 'CROSS_ORIGIN_WRITE' });
    const textPlain = await fetch(`${board}/api/runs/http-guard/cancel`, { method: 'POST', headers: { ...auth, origin: board, 'content-type': 'text/plain' }, body: '{}' });
    expect(textPlain.status).toBe(415);
    expect(await runs().getRun('http-guard')).toMatchObject({ status: 'running' });
    expect(await runs().history('http-guard')).toEqual([]);
  });

  it('answers 404 for an unknown or malformed run id, 400 for a malformed body or budget, 409 for a control the status does not allow', async () => {
    const unknown = await control(board, 'http-nope', 'pause');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ code: 'NOT_FOUND', error: 'run http-nope not found' });
    const malformed = await control(board, encodeURIComponent('bad id!'), 'pause');
    expect(malformed.status).toBe(404);
    expect(await malformed.json()).toEqual({ code: 'NOT_FOUND', error: 'no such run' });
    expect(await runs().getRun('http-nope')).toBeUndefined();

    await newRun('http-bad', ['a']);
    for (const body of [{ budgetUsd: '5' }, {}, { budgetUsd: 5, extra: true }]) {
      const res = await control(board, 'http-bad', 'budget', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'BAD_REQUEST' });
    }
    for (const budgetUsd of [0, -2, 0.0000001, 1e10]) {
      const res = await control(board, 'http-bad', 'budget', { budgetUsd });
      expect(res.status, String(budgetUsd)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'INVALID_BUDGET' });
    }
    const extra = await control(board, 'http-bad', 'pause', { force: true });
    expect(extra.status).toBe(400);

    const notPaused = await control(board, 'http-bad', 'resume');
    expect(notPaused.status).toBe(409);
    expect(await notPaused.json()).toMatchObject({ code: 'RUN_STATE', error: expect.stringMatching(/is running/) });
    await ok(control(board, 'http-bad', 'cancel'));
    for (const [action, body] of ROUTES) {
      const res = await control(board, 'http-bad', action, body);
      expect(res.status, action).toBe(409);
    }
    expect((await runs().history('http-bad')).map((h) => h.action)).toEqual(['cancel']);
  });
});
