import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fakes } from '@brandq/fakes';
import { CostLedger, microsToUsd } from '@brandq/ledger';
import { scrapeMetrics, type PromScrape } from '@brandq/metrics';
import { createRedis, getFreePort } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { useTestRedis, type SpawnedProcess } from '@brandq/testing';
import { enqueue, startWorkers, stopWorkers, workerEnv, writeBrandsCsv, startOpenFakes } from './test-support.js';

const redis = useTestRedis();
let fakes: Fakes;
let dir: string;
let workers: SpawnedProcess[] = [];

const RUN = 'metrics-run';
const BROKEN = 'Broken Brand';
const BRANDS = ['Metric Alpha', 'Metric Beta', 'Metric Gamma', 'Metric Delta', BROKEN];

beforeAll(async () => {
  // LLM calls last about a second and launch a second apart (stagger), so a lease is held
  // and a stagger slot is booked for most of the run: the gauges are seen moving by polling.
  fakes = await startOpenFakes({ openai: { latencyMs: { min: 900, max: 1100 }, seed: 41 }, tavily: { latencyMs: { min: 5, max: 20 }, seed: 42 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-metrics-'));
});
afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

async function scrapeWhenUp(url: string, timeoutMs: number): Promise<PromScrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await scrapeMetrics(url);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`no /metrics at ${url} after ${timeoutMs} ms: ${String(err)}\n${workers[0]?.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('worker /metrics (prom-client, brandq_ prefix)', () => {
  it('exposes the named series and they move with a small run: jobs, latency, tokens, cost, 429s, limiter, queue, budget, process', { timeout: 90_000 }, async () => {
    const port = await getFreePort();
    const env = workerEnv(fakes, redis.url, { METRICS_PORT: String(port), OPENAI_STAGGER_SECONDS: '1', STAGGER_JITTER_CAP_SECONDS: '0.1' });
    workers = startWorkers(1, env, 4);
    const url = `http://127.0.0.1:${port}/metrics`;
    const before = await scrapeWhenUp(url, 30_000);

    for (const name of [
      'brandq_jobs_completed_total',
      'brandq_jobs_failed_total',
      'brandq_job_duration_seconds',
      'brandq_provider_call_duration_seconds',
      'brandq_llm_tokens_total',
      'brandq_cost_dollars_total',
      'brandq_rate_limit_events_total',
      'brandq_stagger_delays_total',
      'brandq_tpm_window_deferrals_total',
      'brandq_limiter_deferrals_total',
      'brandq_active_concurrency',
      'brandq_next_slot_epoch',
      'brandq_queue_jobs',
      'brandq_budget_remaining_dollars',
      'brandq_process_cpu_user_seconds_total',
      'brandq_process_resident_memory_bytes',
      'brandq_nodejs_eventloop_lag_seconds',
    ]) {
      expect(before.has(name), `${name} declared`).toBe(true);
    }
    // Counters that alerts use exist at 0 before the first event.
    for (const provider of ['llm', 'tavily', 'sheets']) {
      expect(before.find('brandq_rate_limit_events_total', { provider })).toEqual([expect.objectContaining({ value: 0 })]);
      expect(before.find('brandq_stagger_delays_total', { provider })).toHaveLength(1);
      expect(before.find('brandq_tpm_window_deferrals_total', { provider })).toHaveLength(1);
      expect(before.find('brandq_active_concurrency', { provider })).toEqual([expect.objectContaining({ value: 0 })]);
    }
    expect(before.sum('brandq_jobs_completed_total')).toBe(0);
    expect(before.sum('brandq_queue_jobs', { state: 'completed' })).toBe(0);

    // One 429 on the first LLM call of a good brand; one brand the LLM refuses for good.
    fakes.openai.injectFaults([
      { status: 429, retryAfterMs: 300, match: (brand) => brand !== BROKEN },
      { status: 400, brand: BROKEN },
    ]);
    const startedAtSeconds = Date.now() / 1000;
    const csv = await writeBrandsCsv(dir, BRANDS);
    await enqueue(['--csv', csv, '--run', RUN, '--budget', '1.00'], env);

    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    const ledger = new CostLedger(client);
    let maxActive = 0;
    let maxNextSlot = 0;
    let maxQueued = 0;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = await scrapeMetrics(url);
      maxActive = Math.max(maxActive, s.sum('brandq_active_concurrency', { provider: 'llm' }));
      maxNextSlot = Math.max(maxNextSlot, s.sum('brandq_next_slot_epoch', { provider: 'llm' }));
      maxQueued = Math.max(maxQueued, s.sum('brandq_queue_jobs', { state: 'waiting' }) + s.sum('brandq_queue_jobs', { state: 'active' }) + s.sum('brandq_queue_jobs', { state: 'delayed' }));
      const run = await runs.getRun(RUN);
      // The worker counts a job after BullMQ marks it done, a moment after the run's books.
      if (run?.status === 'completed' && s.sum('brandq_jobs_completed_total') + s.sum('brandq_jobs_failed_total') >= BRANDS.length) break;
      if (Date.now() > deadline) throw new Error(`run did not finish: ${JSON.stringify(run)}\n${workers[0]?.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const after = await scrapeMetrics(url);
    const run = await runs.getRun(RUN);
    expect(run).toMatchObject({ total: 5, succeeded: 4, failed: 1 });
    const books = await ledger.snapshot(RUN);

    // Jobs, by outcome and failure class, and their durations.
    expect(after.sum('brandq_jobs_completed_total')).toBe(4);
    expect(after.sum('brandq_jobs_failed_total', { reason: 'bad_request' })).toBe(1);
    expect(after.sum('brandq_job_duration_seconds_count', { outcome: 'completed' })).toBe(4);
    expect(after.sum('brandq_job_duration_seconds_sum', { outcome: 'completed' })).toBeGreaterThan(4 * 0.8);

    // Provider latency: 4 good LLM answers (about 1 s each), the 429 and the 400; 5 searches.
    expect(after.sum('brandq_provider_call_duration_seconds_count', { provider: 'llm', outcome: 'ok' })).toBe(4);
    expect(after.sum('brandq_provider_call_duration_seconds_count', { provider: 'llm' })).toBe(6);
    expect(after.sum('brandq_provider_call_duration_seconds_sum', { provider: 'llm', outcome: 'ok' })).toBeGreaterThan(4 * 0.8);
    expect(after.sum('brandq_provider_call_duration_seconds_count', { provider: 'tavily', outcome: 'ok' })).toBe(5);
    expect(after.sum('brandq_provider_call_duration_seconds_bucket', { provider: 'llm', outcome: 'ok', le: '+Inf' })).toBe(4);

    // Tokens and dollars equal the run's books in Redis (one worker did all the work).
    expect(after.sum('brandq_llm_tokens_total', { provider: 'llm', direction: 'input' })).toBe(books.providers.llm.inputTokens);
    expect(after.sum('brandq_llm_tokens_total', { provider: 'llm', direction: 'output' })).toBe(books.providers.llm.outputTokens);
    expect(books.providers.llm.inputTokens).toBeGreaterThan(0);
    expect(after.sum('brandq_cost_dollars_total', { run: RUN, provider: 'llm' })).toBeCloseTo(microsToUsd(books.providers.llm.costMicros), 9);
    expect(after.sum('brandq_cost_dollars_total', { run: RUN, provider: 'tavily' })).toBeCloseTo(microsToUsd(books.providers.tavily.costMicros), 9);
    expect(after.sum('brandq_cost_dollars_total', { run: RUN })).toBeCloseTo(microsToUsd(books.spentMicros), 9);
    expect(books.spentMicros).toBeGreaterThan(0);

    // The 429, and the limiter's deferrals (stagger ones are likely with launches 1 s apart).
    expect(after.sum('brandq_rate_limit_events_total', { provider: 'llm' })).toBe(1);
    expect(after.sum('brandq_rate_limit_events_total', { provider: 'tavily' })).toBe(0);
    expect(after.sum('brandq_stagger_delays_total', { provider: 'llm' })).toBe(after.sum('brandq_limiter_deferrals_total', { provider: 'llm', reason: 'stagger' }));
    expect(after.sum('brandq_tpm_window_deferrals_total', { provider: 'llm' })).toBe(after.sum('brandq_limiter_deferrals_total', { provider: 'llm', reason: 'tokens' }));

    // Gauges read from Redis at scrape time: seen moving during the run, back at rest after.
    expect(maxActive).toBeGreaterThanOrEqual(1);
    expect(maxNextSlot).toBeGreaterThan(startedAtSeconds);
    expect(maxQueued).toBeGreaterThan(0);
    expect(after.sum('brandq_active_concurrency', { provider: 'llm' })).toBe(0);
    expect(after.sum('brandq_queue_jobs', { state: 'completed' })).toBe(4);
    expect(after.sum('brandq_queue_jobs', { state: 'failed' })).toBe(1);
    expect(after.sum('brandq_budget_remaining_dollars', { run: RUN })).toBeCloseTo(1 - microsToUsd(books.spentMicros), 6);

    // Default process metrics, prefixed.
    expect(after.sum('brandq_process_cpu_user_seconds_total')).toBeGreaterThan(before.sum('brandq_process_cpu_user_seconds_total'));
    expect(after.sum('brandq_process_resident_memory_bytes')).toBeGreaterThan(0);

    await stopWorkers(workers);
    workers = [];
    client.disconnect();
  });
});
