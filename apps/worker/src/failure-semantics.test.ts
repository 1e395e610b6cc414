import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fakes, type LedgerEntry, type RetryAfterMode } from '@brandq/fakes';
import { normalizeBrandKey } from '@brandq/input';
import type { StoredJobData } from '@brandq/pipeline';
import { brandJobId, createBrandQueue, type BrandQueue } from '@brandq/queue';
import { createRedis } from '@brandq/redis';
import { RunStore, type BrandFailure } from '@brandq/runs';
import { useTestRedis, type SpawnedProcess } from '@brandq/testing';
import { enqueue, producerCli, startWorkers, stopWorkers, waitFor, waitForRun, workerEnv, writeBrandsCsv, startOpenFakes } from './test-support.js';

/**
 * Failure semantics against the fake providers, with real worker processes and Redis:
 * each failure class leads to the right wait, retry, pause or final failure, as the
 * providers' own ledgers and the run's state in Redis show.
 */
const redis = useTestRedis();
const OPENAI_KEY = 'sk-fake-right-key-1234';
/** Small waits and bases so the whole file stays well under a minute and a half. */
const FAST = {
  JOB_ATTEMPTS: '3',
  JOB_BACKOFF_BASE_SECONDS: '0.2',
  OPENAI_BACKOFF_BASE_SECONDS: '0.2',
  OPENAI_RETRY_MAX_ATTEMPTS: '3',
};
/** Ledger times and the workers' clocks are the same machine clock; allow its granularity. */
const CLOCK_MS = 5;

let fakes: Fakes;
let dir: string;
let client: Redis;
let runs: RunStore;
let queue: BrandQueue;
let env: Record<string, string>;

beforeAll(async () => {
  // The LLM fake requires one key, so a worker given another one is refused (401).
  fakes = await startOpenFakes({
    openai: { apiKey: OPENAI_KEY, latencyMs: { min: 2, max: 10 }, seed: 51 },
    tavily: { latencyMs: { min: 2, max: 10 }, seed: 52 },
  });
  dir = await mkdtemp(join(tmpdir(), 'brandq-failures-'));
  client = createRedis(redis.url);
  runs = new RunStore(client);
  queue = createBrandQueue(client);
  env = workerEnv(fakes, redis.url, FAST);
});

afterAll(async () => {
  await queue?.close();
  client?.disconnect();
  await fakes?.close();
});

let runCounter = 0;
async function startRun(names: string[], extraArgs: string[] = []): Promise<string> {
  const runId = `fs-${++runCounter}`;
  const csv = await writeBrandsCsv(dir, names, `${runId}.csv`);
  await enqueue(['--csv', csv, '--run', runId, ...extraArgs], env);
  return runId;
}

const finished = (r: { succeeded: number; failed: number; total: number }) => r.succeeded + r.failed >= r.total;

async function failureOf(runId: string, brand: string): Promise<BrandFailure | undefined> {
  for await (const f of runs.failures(runId)) if (f.brand === brand) return f;
  return undefined;
}

async function jobOf(runId: string, brand: string) {
  const job = await queue.getJob(brandJobId(runId, normalizeBrandKey(brand)));
  if (!job) throw new Error(`no job for ${brand} in ${runId}`);
  return job as unknown as { attemptsMade: number; attemptsStarted: number; data: StoredJobData; getState(): Promise<string> };
}

/** LLM requests about exactly `brand` (the fake reads the prompt's `Brand:` line). */
const llmRequests = (brand: string) => fakes.openai.ledger.filter((e) => e.brand === brand);

async function noActiveJobs(): Promise<boolean> {
  return (await queue.getActiveCount()) === 0;
}

describe('failure semantics with a fleet of two workers', () => {
  let workers: SpawnedProcess[] = [];
  beforeAll(() => {
    workers = startWorkers(2, env, 4);
  });
  afterAll(async () => {
    await stopWorkers(workers);
  });

  // The fake announces 700 ms; what reaches the client depends on the form.
  const WAIT_MS = 700;
  const forms: { server: 'openai' | 'tavily'; mode: RetryAfterMode; brand: string; what: string; heard?: number; earliest: (c: LedgerEntry) => number }[] = [
    { server: 'openai', mode: 'ms', brand: 'Wait Form Millis', what: 'retry-after-ms', heard: WAIT_MS, earliest: (c) => c.cooldownUntil ?? 0 },
    // Whole seconds, rounded up: the client must wait the full second from when it was told.
    { server: 'openai', mode: 'seconds', brand: 'Wait Form Seconds', what: 'retry-after seconds', heard: 1000, earliest: (c) => Math.max(c.cooldownUntil ?? 0, (c.completedAt ?? 0) + 1000) },
    // An HTTP date has 1 s resolution and the fake rounds the instant up: the client must not
    // come back before that whole second (what it hears as a wait depends on when it reads it).
    { server: 'openai', mode: 'date', brand: 'Wait Form Date', what: 'retry-after HTTP date', earliest: (c) => Math.ceil((c.cooldownUntil ?? 0) / 1000) * 1000 },
    { server: 'openai', mode: 'none', brand: 'Wait Form Message', what: '"Please try again in 700ms" message', heard: WAIT_MS, earliest: (c) => c.cooldownUntil ?? 0 },
    { server: 'tavily', mode: 'ms', brand: 'Wait Form Tavily', what: 'Tavily retry-after-ms', heard: WAIT_MS, earliest: (c) => c.cooldownUntil ?? 0 },
  ];

  it.each(forms)('a 429 with $what is honoured without using an ordinary attempt', { timeout: 30_000 }, async ({ server, mode, brand, heard, earliest }) => {
    const fake = fakes[server];
    fake.configure({ retryAfterHeaders: mode });
    fake.injectFaults([{ status: 429, retryAfterMs: WAIT_MS, brand }]);
    const runId = await startRun([brand]);
    const run = await waitForRun(runs, runId, finished, 20_000);
    expect(run).toMatchObject({ succeeded: 1, failed: 0, status: 'completed' });

    const requests = server === 'openai' ? llmRequests(brand) : fakes.tavily.ledger.requestsFor(brand);
    expect(requests.map((e) => e.status)).toEqual([429, 200]);
    const [limited, next] = requests as [LedgerEntry, LedgerEntry];
    expect(limited.retryAfterMs).toBe(WAIT_MS);
    const waited = next.at - (limited.completedAt ?? 0);
    // The next request to the fake for this brand came no earlier than the fake allowed.
    expect(next.at, `next request ${next.at - (limited.cooldownUntil ?? 0)} ms after the announced end`).toBeGreaterThanOrEqual(earliest(limited) - CLOCK_MS);
    expect(waited).toBeLessThan(WAIT_MS + 5000);
    process.stdout.write(`[${mode}] ${server} announced ${WAIT_MS} ms; next request ${waited} ms after the 429 (${next.at - (limited.cooldownUntil ?? 0)} ms after cooldownUntil)\n`);

    // Waiting was not an attempt: one ordinary attempt (the one that succeeded), two starts.
    const job = await jobOf(runId, brand);
    expect(await job.getState()).toBe('completed');
    expect(job.attemptsMade).toBe(1);
    expect(job.attemptsStarted).toBe(2);
    expect(job.data.history?.map((h) => h.kind)).toEqual(['rate_limited']);
    // The wait the worker took is the one the provider asked for, not a default backoff.
    const took = job.data.history?.[0]?.waitMs ?? -1;
    if (heard !== undefined) expect(took).toBe(heard);
    else expect(took).toBeGreaterThan(0);
    fake.configure({ retryAfterHeaders: 'both' });
  });

  it('fails with RATE_LIMIT_EXHAUSTED after OPENAI_RETRY_MAX_ATTEMPTS 429s, with a structured reason', { timeout: 40_000 }, async () => {
    const brand = 'Always Limited Co';
    fakes.openai.injectFaults(Array.from({ length: 4 }, () => ({ status: 429, retryAfterMs: 300, brand })));
    const runId = await startRun([brand, 'Never Limited Co']);
    const run = await waitForRun(runs, runId, finished, 30_000);
    expect(run).toMatchObject({ succeeded: 1, failed: 1, status: 'completed' });

    // Three requests (the configured attempts), all answered 429, then no more.
    expect(llmRequests(brand).map((e) => e.status)).toEqual([429, 429, 429]);
    const failure = await failureOf(runId, brand);
    // The provider asked for 300 ms each time; by the third 429 the floor (OPENAI_BACKOFF_BASE_SECONDS
    // 0.2 doubling: 200, 400, 800 ms) is longer, and the floor wins.
    expect(failure?.reason).toMatch(/^RATE_LIMIT_EXHAUSTED: llm still rate limited after 3 attempts \(last wait 800 ms\)/);
    expect(failure?.details).toMatchObject({ code: 'RATE_LIMIT_EXHAUSTED', provider: 'llm', attempts: 3, lastWaitMs: 800 });
    expect((failure?.details?.history as { kind: string }[]).map((h) => h.kind)).toEqual(['rate_limited', 'rate_limited', 'rate_limited']);
    const job = await jobOf(runId, brand);
    expect(await job.getState()).toBe('failed');

    const listed = await producerCli('failed', ['--run', runId], env);
    expect(listed).toMatch(new RegExp(`row 2\\t${brand}\\trate_limited\\tattempts \\d+\\tRATE_LIMIT_EXHAUSTED: llm still rate limited after 3 attempts`));
    expect(listed).toContain(`1 failed brand(s); retry with: pnpm enqueue --retry-failed --run ${runId}`);
  });

  it('retries a 500 and recovers; a 500 on every attempt fails after JOB_ATTEMPTS with the last error', { timeout: 40_000 }, async () => {
    const recovers = 'Flaky Server Co';
    const broken = 'Broken Server Co';
    fakes.openai.injectFaults([{ status: 500, brand: recovers }, ...Array.from({ length: 3 }, () => ({ status: 500, brand: broken }))]);
    const runId = await startRun([recovers, broken]);
    const run = await waitForRun(runs, runId, finished, 30_000);
    expect(run).toMatchObject({ succeeded: 1, failed: 1, status: 'completed' });

    expect(llmRequests(recovers).map((e) => e.status)).toEqual([500, 200]);
    expect(llmRequests(broken).map((e) => e.status)).toEqual([500, 500, 500]);
    // The search was paid once and kept in the job's checkpoint across the retries.
    expect(fakes.tavily.ledger.requestsFor(broken)).toHaveLength(1);

    const failure = await failureOf(runId, broken);
    expect(failure).toMatchObject({ kind: 'transient', attempts: 3 });
    expect(failure?.reason).toMatch(/^LLM server error \(HTTP 500\): .* \(after 3 attempts\)$/);
    expect(failure?.details).toMatchObject({ provider: 'llm', status: 500 });
    const job = await jobOf(runId, broken);
    expect(job.attemptsMade).toBe(3);
  });

  it.each([
    { server: 'openai' as const, status: 402, reason: /^LLM credits exhausted \(HTTP 402.*top up or raise the key limit.*pnpm enqueue --resume --run/ },
    { server: 'tavily' as const, status: 432, reason: /^Tavily plan usage limit exceeded \(HTTP 432\).*raise the limit in the Tavily dashboard.*pnpm enqueue --resume --run/ },
  ])('a $status from $server pauses the run with no brand failed; --resume completes it', { timeout: 45_000 }, async ({ server, status, reason }) => {
    const names = [1, 2, 3, 4].map((i) => `Quota ${status} Brand ${String.fromCharCode(64 + i)}`);
    const hit = names[1] as string;
    fakes[server].injectFaults([{ status, brand: hit }]);
    const runId = await startRun(names);
    const paused = await waitForRun(runs, runId, (r) => r.status === 'paused', 20_000);
    expect(paused.statusReason).toMatch(reason);
    // Let the calls in flight settle: the held brand stays queued, nothing failed.
    await waitFor('no active jobs', noActiveJobs, 15_000);
    const held = await runs.getRun(runId);
    expect(held).toMatchObject({ status: 'paused', failed: 0 });
    expect(held?.succeeded).toBeLessThan(names.length);
    expect(await (await jobOf(runId, hit)).getState()).toBe('delayed');
    // The fault fired once, on that brand; it is spent, so the provider is "fixed".
    const hitRequests = server === 'openai' ? llmRequests(hit) : fakes.tavily.ledger.requestsFor(hit);
    expect(hitRequests.map((e) => e.status)).toEqual([status]);

    await enqueue(['--resume', '--run', runId], env);
    const done = await waitForRun(runs, runId, (r) => r.status === 'completed', 20_000);
    expect(done).toMatchObject({ total: 4, succeeded: 4, failed: 0 });
  });

  it('repairs malformed JSON content with exactly one more call; a second bad answer fails with the raw answer kept', { timeout: 30_000 }, async () => {
    const repaired = 'Garbled Once Co';
    const hopeless = 'Garbled Twice Co';
    fakes.openai.injectFaults([
      { kind: 'bad-json-content', brand: repaired },
      { kind: 'bad-json-content', brand: hopeless },
      { kind: 'bad-json-content', brand: hopeless },
    ]);
    const runId = await startRun([repaired, hopeless]);
    const run = await waitForRun(runs, runId, finished, 20_000);
    expect(run).toMatchObject({ succeeded: 1, failed: 1, status: 'completed' });

    expect(llmRequests(repaired).map((e) => [e.status, e.fault])).toEqual([[200, 'bad-json-content'], [200, null]]);
    expect(llmRequests(hopeless).map((e) => [e.status, e.fault])).toEqual([[200, 'bad-json-content'], [200, 'bad-json-content']]);

    const failure = await failureOf(runId, hopeless);
    expect(failure).toMatchObject({ kind: 'bad_output', attempts: 1 });
    expect(failure?.reason).toMatch(/^answer is not valid JSON/);
    const raw = failure?.details?.rawAnswer;
    expect(typeof raw).toBe('string');
    expect((raw as string).length).toBeGreaterThan(0);
    expect(() => JSON.parse(raw as string)).toThrow();
  });
});

describe('a refused API key', () => {
  let workers: SpawnedProcess[] = [];
  afterAll(async () => {
    await stopWorkers(workers);
  });

  it('stops the run on the first brand with one message: one LLM request, one failed brand, the rest queued', { timeout: 40_000 }, async () => {
    const wrongKey = 'sk-wrong-key-0000';
    const names = ['Locked Out A', 'Locked Out B', 'Locked Out C', 'Locked Out D'];
    // A refused request is answered before the fake reads its body (no brand in the ledger):
    // count everything the fake receives from here on.
    const llmBefore = fakes.openai.ledger.length;
    const tavilyBefore = fakes.tavily.ledger.length;
    const runId = await startRun(names);
    // One worker, one job at a time, so "the first brand" is well defined.
    workers = startWorkers(1, { ...env, OPENAI_API_KEY: wrongKey }, 1);

    const paused = await waitForRun(runs, runId, (r) => r.status === 'paused', 30_000);
    expect(paused.statusReason).toMatch(/^LLM refused the API key \(HTTP 401\).*check OPENAI_API_KEY on the workers.*pnpm enqueue --retry-failed --run /);
    expect(paused.statusReason).not.toContain(wrongKey);
    // The other three brands are picked up, see the paused run and wait (delayed), unfailed.
    const others = names.slice(1);
    await waitFor('the other brands held', async () => {
      const states = await Promise.all(others.map(async (n) => (await jobOf(runId, n)).getState()));
      return states.every((s) => s === 'delayed');
    }, 20_000);

    const run = await runs.getRun(runId);
    expect(run).toMatchObject({ status: 'paused', failed: 1, succeeded: 0 });
    const failures: BrandFailure[] = [];
    for await (const f of runs.failures(runId)) failures.push(f);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ brand: names[0], kind: 'unauthorized', reason: paused.statusReason });
    expect(fakes.openai.ledger.entries().slice(llmBefore).map((e) => [e.status, e.authorized])).toEqual([[401, false]]);
    expect(fakes.tavily.ledger.entries().slice(tavilyBefore).map((e) => [e.status, e.query?.startsWith(names[0] as string)])).toEqual([[200, true]]);
    // One clear message for the operator, not one per brand.
    const paused401 = workers[0]?.output().split('\n').filter((l) => l.includes(`run ${runId} paused`)) ?? [];
    expect(paused401).toHaveLength(1);
  });
});
