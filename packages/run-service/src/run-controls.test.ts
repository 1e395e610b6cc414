import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Worker, type Job } from 'bullmq';
import { loadConfig } from '@brandq/config';
import { CostLedger } from '@brandq/ledger';
import { createLogger } from '@brandq/logger';
import { createBrandJobProcessor, type BrandPipeline, type StoredJobData } from '@brandq/pipeline';
import { BRAND_QUEUE, brandJobId, createBrandQueue, type BrandJobData, type BrandQueue } from '@brandq/queue';
import { QUEUE_PREFIX, runKeys } from '@brandq/redis';
import { RunStore, type BrandFailure } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import { runControls, type RunControlRefusal, type RunControls } from './run-controls.js';
import { failureGroupId } from './run-detail.js';

const redis = useTestRedis();
const DAY = 86_400_000;
let queue: BrandQueue;
let controls: RunControls;
beforeAll(() => {
  queue = createBrandQueue(redis.client());
  controls = runControls({ redis: redis.client(), queue, config: loadConfig({ REDIS_URL: redis.url, RUN_RETENTION_DAYS: '7' }) });
});
afterAll(() => queue.close());
beforeEach(() => redis.flush());
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const runs = () => new RunStore(redis.client());
const ledger = () => new CostLedger(redis.client());
const brand = (runId: string, key: string, i = 0): BrandJobData => ({ runId, key, name: key.toUpperCase(), rowNumber: i + 2, hints: {}, source: { type: 'csv', path: `/tmp/${runId}.csv` } });

/** A run of `keys` with a budget, its jobs not enqueued (each test puts them where it needs them). */
async function newRun(runId: string, keys: string[], budgetMicros = 1_000_000): Promise<void> {
  const written = await runs().createOrExtendRun({ id: runId, source: brand(runId, 'x').source, sourceKey: `csv:/tmp/${runId}.csv`, brands: keys.map((k, i) => brand(runId, k, i)), skipped: [] });
  expect(written.kind).toBe('written');
  await ledger().setBudget(runId, budgetMicros);
}

const addJob = (runId: string, key: string, opts: { delay?: number; priority?: number } = {}) => queue.add('brand', brand(runId, key), { jobId: brandJobId(runId, key), ...opts });
const stateOf = (runId: string, key: string) => queue.getJobState(brandJobId(runId, key));

async function refusal(pending: Promise<unknown>): Promise<{ code: RunControlRefusal; message: string }> {
  const error = (await pending.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: RunControlRefusal; message: string } | undefined;
  if (!error?.code) throw new Error(`expected a refusal, got ${error ? error.message : 'success'}`);
  return { code: error.code, message: error.message };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never happened: ${what}`);
}

/** The real processor on a real worker, over a pipeline that counts the brands it is asked to process. */
function startWorker(): { calls: string[] } {
  const calls: string[] = [];
  const pipeline = { process: async (data: BrandJobData) => (calls.push(data.key), { fresh: true }) } as unknown as BrandPipeline;
  const logger = createLogger({ name: 'run-controls-test', level: 'silent', format: 'json' });
  const processor = createBrandJobProcessor({ pipeline, runs: runs(), logger, rateLimitMaxAttempts: 3, rateLimitBackoffBaseMs: 1000, pausedRecheckMs: 60_000 });
  const worker = new Worker<StoredJobData>(BRAND_QUEUE, (job: Job<StoredJobData>, token?: string) => processor(job, token), { connection: redis.client(), prefix: QUEUE_PREFIX, concurrency: 2 });
  closers.push(() => worker.close());
  return { calls };
}

describe('pause and resume', () => {
  it('pauses a running run: the worker parks its job without processing it; resume promotes the job and the worker takes it', async () => {
    await newRun('ctl-pause', ['a']);
    const paused = await controls.pause('ctl-pause', 'ops');
    expect(paused.run).toMatchObject({ status: 'paused', statusReason: 'paused by ops' });
    expect(paused.history).toEqual([{ at: expect.any(String), action: 'pause', by: 'ops', details: {} }]);

    const { calls } = startWorker();
    await addJob('ctl-pause', 'a');
    await until(async () => (await stateOf('ctl-pause', 'a')) === 'delayed', 'the job of the paused run parked');
    expect(calls).toEqual([]);

    const resumed = await controls.resume('ctl-pause', 'ops-2');
    expect(resumed.run.status).toBe('running');
    expect(resumed.history.map((h) => [h.action, h.by])).toEqual([['resume', 'ops-2'], ['pause', 'ops']]);
    expect(resumed.history[0]?.details).toEqual({ from: 'paused', status: 'running', requeued: 1 });
    // Promoted now, not after the 60 s recheck the processor parked it for.
    await until(async () => (await stateOf('ctl-pause', 'a')) === 'completed', 'the resumed job processed');
    expect(calls).toEqual(['a']);
  });

  it('pauses only a running run and resumes only a held one, changing nothing otherwise', async () => {
    await newRun('ctl-states', ['a', 'b']);
    expect(await refusal(controls.resume('ctl-states', 'ops'))).toEqual({ code: 'RUN_STATE', message: 'run ctl-states is running: only a paused run, or one held for its budget, can be resumed' });
    await controls.pause('ctl-states', 'ops');
    expect(await refusal(controls.pause('ctl-states', 'ops'))).toMatchObject({ code: 'RUN_STATE', message: expect.stringMatching(/is paused: only a running run can be paused/) });
    await controls.cancel('ctl-states', 'ops');
    for (const control of [controls.pause, controls.resume, controls.cancel]) {
      expect(await refusal(control('ctl-states', 'ops'))).toMatchObject({ code: 'RUN_STATE', message: expect.stringMatching(/is cancelled/) });
    }
    expect((await runs().history('ctl-states')).map((h) => h.action)).toEqual(['cancel', 'pause']);
    expect(await refusal(controls.pause('ctl-none', 'ops'))).toEqual({ code: 'RUN_NOT_FOUND', message: 'run ctl-none not found' });
    expect(await runs().getRun('ctl-none')).toBeUndefined();
  });

  it('never pauses a run that a worker completed meanwhile', async () => {
    await newRun('ctl-done', ['a']);
    await runs().recordSuccess({ runId: 'ctl-done', key: 'a', brand: 'A', rowNumber: 2, processedAt: 'now', fields: {} });
    expect(await refusal(controls.pause('ctl-done', 'ops'))).toMatchObject({ code: 'RUN_STATE', message: expect.stringMatching(/is completed/) });
    expect((await runs().getRun('ctl-done'))?.status).toBe('completed');
  });
});

describe('cancel', () => {
  it("removes the run's waiting, delayed and prioritized jobs, leaves the active and finished ones, and ends the run with its retention", async () => {
    await newRun('ctl-cancel', ['active', 'done', 'waiting', 'delayed', 'prioritized']);
    await newRun('ctl-other', ['a']);
    const taker = new Worker(BRAND_QUEUE, null, { connection: redis.client(), prefix: QUEUE_PREFIX, autorun: false });
    closers.push(() => taker.close());
    await addJob('ctl-cancel', 'done');
    const done = (await taker.getNextJob('token-done', { block: false })) as Job;
    await done.moveToCompleted('ok', 'token-done', false);
    await addJob('ctl-cancel', 'active');
    expect((await taker.getNextJob('token-active', { block: false }))?.id).toBe(brandJobId('ctl-cancel', 'active'));
    await addJob('ctl-cancel', 'waiting');
    await addJob('ctl-cancel', 'delayed', { delay: 60_000 });
    await addJob('ctl-cancel', 'prioritized', { priority: 5 });
    await addJob('ctl-other', 'a');
    expect(await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed')).toEqual({ waiting: 2, delayed: 1, prioritized: 1, active: 1, completed: 1 });

    const cancelled = await controls.cancel('ctl-cancel', 'ops');
    expect(cancelled.run).toMatchObject({ status: 'cancelled', statusReason: 'cancelled by ops', finishedAt: expect.any(Number) });
    expect(cancelled.history[0]).toMatchObject({ action: 'cancel', by: 'ops', details: { from: 'running', removedJobs: 3, activeJobs: 1 } });
    expect(await queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed')).toEqual({ waiting: 1, delayed: 0, prioritized: 0, active: 1, completed: 1 });
    for (const key of ['waiting', 'delayed', 'prioritized']) expect(await stateOf('ctl-cancel', key)).toBe('unknown');
    expect(await stateOf('ctl-other', 'a')).toBe('waiting');
    // Ended: its keys (the history written after the end among them) expire with the retention.
    for (const key of [runKeys('ctl-cancel').meta, runKeys('ctl-cancel').history]) expect(await redis.client().pttl(key)).toBeGreaterThan(7 * DAY - 60_000);
  });
});

describe('budget', () => {
  it('refuses a budget the ledger cannot keep, changing nothing', async () => {
    await newRun('ctl-bad-budget', ['a'], 1_000_000);
    for (const usd of [0, -1, 0.0000004, Number.NaN, Number.POSITIVE_INFINITY, 1e10]) {
      expect(await refusal(controls.budget('ctl-bad-budget', usd, 'ops'))).toMatchObject({ code: 'INVALID_BUDGET' });
    }
    expect((await ledger().snapshot('ctl-bad-budget')).budgetMicros).toBe(1_000_000);
    expect(await runs().history('ctl-bad-budget')).toEqual([]);
    expect(await refusal(controls.budget('ctl-none', 5, 'ops'))).toMatchObject({ code: 'RUN_NOT_FOUND' });
  });

  it('sets the budget of a running run and records the change', async () => {
    await newRun('ctl-budget', ['a'], 1_000_000);
    const changed = await controls.budget('ctl-budget', 2.5, 'ops');
    expect(changed.run.status).toBe('running');
    expect(changed.history[0]).toMatchObject({ action: 'budget', by: 'ops', details: { budgetMicros: 2_500_000, previousBudgetMicros: 1_000_000, resumed: false } });
    expect((await ledger().snapshot('ctl-budget')).budgetMicros).toBe(2_500_000);
  });

  it('a run held for its budget: resume is refused while the budget is spent; a lower budget keeps it held; a higher one resumes it and promotes its parked jobs', async () => {
    await newRun('ctl-held', ['a', 'b'], 1_000_000);
    await ledger().book('ctl-held', 'llm', { costMicros: 1_000_000 });
    expect(await runs().markBudgetExhausted('ctl-held', (await ledger().snapshot('ctl-held')).budgetEpoch, 'budget reached')).toBe(true);
    await addJob('ctl-held', 'a', { delay: 60_000 });
    await addJob('ctl-held', 'b', { delay: 60_000 });

    expect(await refusal(controls.resume('ctl-held', 'ops'))).toEqual({ code: 'BUDGET_STILL_EXHAUSTED', message: 'run ctl-held is held for its budget, which is spent: raise the budget to resume it' });
    const lowered = await controls.budget('ctl-held', 0.9, 'ops');
    expect(lowered.run.status).toBe('budget_exhausted');
    expect(lowered.history[0]?.details).toMatchObject({ resumed: false });

    const raised = await controls.budget('ctl-held', 3, 'ops');
    expect(raised.run.status).toBe('running');
    expect(raised.history[0]?.details).toEqual({ budgetMicros: 3_000_000, previousBudgetMicros: 900_000, resumed: true, requeued: 2 });
    expect([await stateOf('ctl-held', 'a'), await stateOf('ctl-held', 'b')]).toEqual(['prioritized', 'prioritized']);
    expect((await ledger().snapshot('ctl-held')).budgetMicros).toBe(3_000_000);
  });

  it('resumes a run held for its budget once the budget leaves room again, and refuses a cancelled run', async () => {
    await newRun('ctl-room', ['a'], 1_000_000);
    await ledger().book('ctl-room', 'llm', { costMicros: 400_000 });
    await runs().markBudgetExhausted('ctl-room', (await ledger().snapshot('ctl-room')).budgetEpoch, 'budget reached');
    expect((await controls.resume('ctl-room', 'ops')).run.status).toBe('running');
    await controls.cancel('ctl-room', 'ops');
    expect(await refusal(controls.budget('ctl-room', 5, 'ops'))).toMatchObject({ code: 'RUN_STATE', message: expect.stringMatching(/is cancelled/) });
  });
});

describe('retry', () => {
  const failure = (runId: string, key: string, kind: string, reason: string): BrandFailure & { runId: string } => ({ runId, key, brand: key.toUpperCase(), rowNumber: 2, kind, reason, attempts: 1, failedAt: new Date().toISOString() });

  it('reopens and requeues the failed brands of one group (kind and reason), the others stay failed', async () => {
    await newRun('ctl-retry', ['a', 'b', 'c', 'd']);
    const store = runs();
    await store.recordFailure(failure('ctl-retry', 'a', 'bad_output', 'no website'));
    await store.recordFailure(failure('ctl-retry', 'b', 'bad_output', 'no website'));
    await store.recordFailure(failure('ctl-retry', 'c', 'bad_output', 'schema mismatch'));
    await store.recordFailure(failure('ctl-retry', 'd', 'transient', 'no website'));
    expect((await store.getRun('ctl-retry'))?.status).toBe('completed');

    const retried = await controls.retry('ctl-retry', { kind: 'bad_output', reason: 'no website' }, 'ops');
    expect(retried.run).toMatchObject({ status: 'running', failed: 2 });
    expect(retried.history[0]).toMatchObject({ action: 'retry', by: 'ops', details: { kind: 'bad_output', reason: 'no website', reopened: 2, requeued: 2 } });
    expect(await Promise.all(['a', 'b', 'c', 'd'].map((k) => stateOf('ctl-retry', k)))).toEqual(['prioritized', 'prioritized', 'unknown', 'unknown']);
    const stillFailed: string[] = [];
    for await (const f of store.failures('ctl-retry')) stillFailed.push(f.key);
    expect(stillFailed.sort()).toEqual(['c', 'd']);

    expect(await refusal(controls.retry('ctl-retry', { kind: 'rate_limit_exhausted' }, 'ops'))).toEqual({ code: 'NO_FAILURES', message: 'run ctl-retry has no failed brands of kind "rate_limit_exhausted"' });
    const all = await controls.retry('ctl-retry', {}, 'ops');
    expect(all.history[0]?.details).toMatchObject({ reopened: 2 });
    expect(all.run.failed).toBe(0);
  });

  it('retries a group by the id the run page lists it under, whatever its reason shows (reasons are shown redacted)', async () => {
    await newRun('ctl-retry-id', ['a', 'b']);
    const secretReason = 'HTTP 401: Incorrect API key provided: sk-live-abcdefgh12345678';
    await runs().recordFailure(failure('ctl-retry-id', 'a', 'unauthorized', secretReason));
    await runs().recordFailure(failure('ctl-retry-id', 'b', 'transient', 'HTTP 500'));
    const retried = await controls.retry('ctl-retry-id', { group: failureGroupId('unauthorized', secretReason) }, 'ops');
    expect(retried.history[0]?.details).toMatchObject({ reopened: 1 });
    expect(await Promise.all(['a', 'b'].map((k) => stateOf('ctl-retry-id', k)))).toEqual(['prioritized', 'unknown']);
    expect(await refusal(controls.retry('ctl-retry-id', { group: failureGroupId('unauthorized', 'HTTP 401: Incorrect API key provided: sk-[REDACTED]') }, 'ops'))).toMatchObject({ code: 'NO_FAILURES' });
  });

  it('refuses to retry on a held or cancelled run', async () => {
    await newRun('ctl-retry-held', ['a', 'b']);
    await runs().recordFailure(failure('ctl-retry-held', 'a', 'transient', 'HTTP 500'));
    await controls.pause('ctl-retry-held', 'ops');
    expect(await refusal(controls.retry('ctl-retry-held', {}, 'ops'))).toMatchObject({ code: 'RUN_STATE', message: expect.stringMatching(/is paused: resume it first/) });
    expect((await runs().getRun('ctl-retry-held'))?.status).toBe('paused');
    await controls.cancel('ctl-retry-held', 'ops');
    expect(await refusal(controls.retry('ctl-retry-held', {}, 'ops'))).toMatchObject({ code: 'RUN_STATE', message: expect.stringMatching(/is cancelled/) });
  });
});

describe('controls that race', () => {
  it('a cancel and a resume sent at once never bring a cancelled run back: once cancel succeeds, the run stays cancelled', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `race-${i}`);
    for (const id of ids) {
      await newRun(id, ['a', 'b', 'c']);
      await runs().setStatus(id, 'paused', 'paused for the race');
    }
    const outcomes = await Promise.all(
      ids.map(async (id) => {
        const [cancelled, resumed] = await Promise.allSettled([controls.cancel(id, 'ops'), controls.resume(id, 'ops')]);
        return { id, cancelled: cancelled.status === 'fulfilled', resumed: resumed.status === 'fulfilled' };
      }),
    );
    for (const { id, cancelled } of outcomes) {
      const run = await runs().getRun(id);
      if (cancelled) expect(run?.status, id).toBe('cancelled');
      else expect(run?.status, id).toBe('running');
    }
    for (const { id, cancelled } of outcomes) {
      if (!cancelled) continue;
      const queued = await Promise.all(['a', 'b', 'c'].map((key) => stateOf(id, key)));
      expect(queued.filter((state) => state === 'waiting' || state === 'prioritized' || state === 'delayed'), id).toEqual([]);
    }
    expect(outcomes.some((o) => o.cancelled)).toBe(true);
  });
});
