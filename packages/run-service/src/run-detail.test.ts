import { describe, expect, it } from 'vitest';
import { RunShares, type FleetShares } from '@brandq/fair-share';
import { CostLedger } from '@brandq/ledger';
import type { DeferralReason, LimiterStats } from '@brandq/limiter';
import { defaultRecipe } from '@brandq/recipe';
import { RunStore, type RunMeta } from '@brandq/runs';
// @brandq/testing is not a dependency of this package; its source is imported directly.
import { useTestRedis } from '@brandq/testing';
import { bindingNow, failureGroupId, rateSinceStart, recentRatePerMinute, runDetail, runEta } from './run-detail.js';

const redis = useTestRedis();
const deps = () => ({ runs: new RunStore(redis.client()), ledger: new CostLedger(redis.client()) });
const source = { type: 'csv' as const, path: '/tmp/detail.csv' };
const names = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne'];

async function newRun(runId: string): Promise<void> {
  const { runs } = deps();
  const brands = names.map((name, i) => ({ runId, key: name.toLowerCase(), name, rowNumber: i + 2, hints: {}, source }));
  await runs.createOrExtendRun({ id: runId, source, sourceKey: `csv:/tmp/${runId}.csv`, brands, skipped: [], recipe: defaultRecipe() });
}

/** A fleet that admitted no call lately. */
const quietFleet: FleetShares = { windowMs: 60_000, calls: 0, runs: new Map() };

const fields = { website: 'https://acme.example/', category: 'tools', description: 'Makes <b>anvils</b>', country: 'US', founded_year: 1949, sources: ['https://a.example/', 'https://b.example/'] };

describe('runDetail', () => {
  it('is undefined for a run that does not exist', async () => {
    expect(await runDetail(deps(), 'no-such-run', { llmLabel: 'OpenAI', fleet: quietFleet })).toBeUndefined();
  });

  it('gathers the run, its recipe, books, cost summary, failure groups and the newest results page by page', async () => {
    const { runs, ledger } = deps();
    await newRun('detail-a');
    await ledger.setBudget('detail-a', 2_000_000);
    await ledger.book('detail-a', 'llm', { costMicros: 250_000, inputTokens: 1000, outputTokens: 200 });
    // Acme, Globex, Initech, Umbrella succeed, one second apart, Umbrella last.
    for (const [i, name] of names.slice(0, 4).entries()) {
      await runs.recordSuccess({ runId: 'detail-a', key: name.toLowerCase(), brand: name, rowNumber: i + 2, fields, processedAt: `2030-01-01T00:00:0${i}.000Z` });
    }
    // Two fail the same way, one another way.
    const failure = (name: string, kind: string, reason: string, at: string) =>
      runs.recordFailure({ runId: 'detail-a', key: name.toLowerCase(), brand: name, rowNumber: names.indexOf(name) + 2, kind, reason, attempts: 3, failedAt: at });
    await failure('Hooli', 'transient', 'LLM server error (HTTP 500)', '2030-01-01T00:01:00.000Z');
    await failure('Stark', 'transient', 'LLM server error (HTTP 500)', '2030-01-01T00:02:00.000Z');
    await failure('Wayne', 'bad_output', 'answer is not valid JSON', '2030-01-01T00:03:00.000Z');

    const paused = { at: '2030-01-01T00:04:00.000Z', action: 'pause' as const, by: 'ops', details: {} };
    await runs.appendHistory('detail-a', paused);

    const detail = await runDetail(deps(), 'detail-a', { llmLabel: 'OpenAI', page: 1, pageSize: 3, ratePerMinute: 10, fleet: quietFleet });
    expect(detail?.run).toMatchObject({ id: 'detail-a', total: 7, succeeded: 4, failed: 3, status: 'completed' });
    expect(detail?.recipe).toEqual({ name: 'brand-facts', steps: [{ id: 'search', type: 'search' }, { id: 'facts', type: 'llm' }] });
    expect(detail?.ledger).toMatchObject({ budgetMicros: 2_000_000, spentMicros: 250_000 });
    expect(detail?.costSummary).toContain('OpenAI: $0.25 (1 calls)');
    expect(detail?.costSummary).toContain('Budget: $0.25 / $2.00 (12.5%)');
    expect(detail?.eta).toEqual({ seconds: 0, ratePerMinute: 10 });
    expect(detail?.binding).toEqual({ reason: 'ended', words: 'nothing: the run has ended (completed)' });
    expect(detail?.failures.groups).toEqual([
      {
        id: failureGroupId('transient', 'LLM server error (HTTP 500)'),
        kind: 'transient',
        reason: 'LLM server error (HTTP 500)',
        count: 2,
        latest: [
          { brand: 'Stark', rowNumber: 7, reason: 'LLM server error (HTTP 500)', failedAt: '2030-01-01T00:02:00.000Z' },
          { brand: 'Hooli', rowNumber: 6, reason: 'LLM server error (HTTP 500)', failedAt: '2030-01-01T00:01:00.000Z' },
        ],
      },
      { id: failureGroupId('bad_output', 'answer is not valid JSON'), kind: 'bad_output', reason: 'answer is not valid JSON', count: 1, latest: [{ brand: 'Wayne', rowNumber: 8, reason: 'answer is not valid JSON', failedAt: '2030-01-01T00:03:00.000Z' }] },
    ]);
    // Newest first; the fields as the CSV export writes them (lists joined), markup left as text.
    expect(detail?.results).toMatchObject({ page: 1, pageSize: 3, total: 4, columns: ['website', 'category', 'description', 'country', 'founded_year', 'sources'] });
    expect(detail?.results.rows.map((r) => r.brand)).toEqual(['Umbrella', 'Initech', 'Globex']);
    expect(detail?.results.rows[0]).toEqual({
      row: 5,
      brand: 'Umbrella',
      fields: { website: 'https://acme.example/', category: 'tools', description: 'Makes <b>anvils</b>', country: 'US', founded_year: '1949', sources: 'https://a.example/ https://b.example/' },
    });
    const second = await runDetail(deps(), 'detail-a', { llmLabel: 'OpenAI', page: 2, pageSize: 3, fleet: quietFleet });
    expect(second?.results.rows.map((r) => r.brand)).toEqual(['Acme']);
    expect(detail?.history).toEqual([paused]);
  });

  it('keeps the latest three examples of a large failure group, newest first', async () => {
    const { runs } = deps();
    await newRun('detail-many');
    for (const [i, name] of names.entries()) {
      await runs.recordFailure({ runId: 'detail-many', key: name.toLowerCase(), brand: name, rowNumber: i + 2, kind: 'rate_limited', reason: 'RATE_LIMIT_EXHAUSTED', attempts: 3, failedAt: `2030-01-01T00:0${i}:00.000Z` });
    }
    const detail = await runDetail(deps(), 'detail-many', { llmLabel: 'OpenAI', fleet: quietFleet });
    expect(detail?.failures.groups).toHaveLength(1);
    expect(detail?.failures.groups[0]?.count).toBe(7);
    expect(detail?.failures.groups[0]?.latest.map((e) => e.brand)).toEqual(['Wayne', 'Stark', 'Hooli']);
  });
});

describe("the run's fair share", () => {
  // On a 5 s bucket boundary: the last minute is read over 11 whole buckets and this one, 55 s.
  const now = 2_000_000_000_000;

  it('gives its weight and ceiling, its part of the calls the fleet was admitted over the last minute, and the ETA at that pace', async () => {
    const { runs } = deps();
    await newRun('detail-share');
    expect(await runs.setShare('detail-share', { weight: 3, maxRpm: 60 })).toBe(true);
    for (const [i, name] of names.slice(0, 2).entries()) {
      await runs.recordSuccess({ runId: 'detail-share', key: name.toLowerCase(), brand: name, rowNumber: i + 2, fields, processedAt: '2030-01-01T00:00:00.000Z' });
    }
    const shares = new RunShares(redis.client(), () => now);
    for (let i = 0; i < 30; i++) await shares.admitted('detail-share');
    for (let i = 0; i < 10; i++) await shares.admitted('detail-other');
    await shares.finished('detail-share');
    await shares.finished('detail-share');

    const detail = await runDetail(deps(), 'detail-share', { llmLabel: 'OpenAI', fleet: await shares.measure() });
    // 5 brands open, 2 finished in 55 s: 137.5 s, rounded up.
    expect(detail?.fairShare).toEqual({ weight: 3, maxRpm: 60, measuredShare: 0.75, calls: 30, done: 2, windowMs: 55_000, etaSeconds: 138 });
  });

  it('is weight 1 without a ceiling for a run that set neither; no ETA while it finished nothing lately or is held; 0 when nothing is open', async () => {
    const { runs } = deps();
    await newRun('detail-plain');
    const plain = await runDetail(deps(), 'detail-plain', { llmLabel: 'OpenAI', fleet: quietFleet });
    expect(plain?.fairShare).toEqual({ weight: 1, maxRpm: null, measuredShare: 0, calls: 0, done: 0, windowMs: 60_000, etaSeconds: null });

    const fleet: FleetShares = { windowMs: 60_000, calls: 10, runs: new Map([['detail-plain', { calls: 10, done: 6, share: 1 }]]) };
    expect((await runDetail(deps(), 'detail-plain', { llmLabel: 'OpenAI', fleet }))?.fairShare.etaSeconds).toBe(70);
    await runs.setStatus('detail-plain', 'paused', 'paused by ops');
    expect((await runDetail(deps(), 'detail-plain', { llmLabel: 'OpenAI', fleet }))?.fairShare).toMatchObject({ measuredShare: 1, etaSeconds: null });
    for await (const b of runs.brands('detail-plain')) {
      await runs.recordSuccess({ runId: 'detail-plain', key: b.key, brand: b.name, rowNumber: b.rowNumber, fields, processedAt: '2030-01-01T00:00:00.000Z' });
    }
    expect((await runDetail(deps(), 'detail-plain', { llmLabel: 'OpenAI', fleet }))?.fairShare.etaSeconds).toBe(0);
  });
});

const meta = (over: Partial<RunMeta>): RunMeta => ({
  id: 'r',
  source,
  sourceKey: 'k',
  status: 'running',
  total: 100,
  succeeded: 0,
  failed: 0,
  skipped: 0,
  createdAt: 0,
  updatedAt: 0,
  ...over,
});

describe('the ETA', () => {
  it('is the open brands at the given rate; null while held or without a rate; 0 when nothing is open', () => {
    expect(runEta(meta({ succeeded: 30, failed: 10 }), 20)).toEqual({ seconds: 180, ratePerMinute: 20 });
    expect(runEta(meta({ succeeded: 30 }), 0)).toEqual({ seconds: null, ratePerMinute: 0 });
    expect(runEta(meta({ succeeded: 30, status: 'paused' }), 20)).toEqual({ seconds: null, ratePerMinute: 20 });
    expect(runEta(meta({ succeeded: 95, failed: 5, status: 'completed' }), 20)).toEqual({ seconds: 0, ratePerMinute: 20 });
  });

  it("measures the recent rate over the timeline's latest minute (six buckets when they are wider), whole buckets only", () => {
    const point = (t: number, done: number, failed = 0) => ({ t, done, failed, spentMicros: 0, rateLimited: 0, waits: { requests: 0, tokens: 0, concurrency: 0, stagger: 0, cooldown: 0 } });
    // 10 s buckets: a slow start, then 30 brands in the latest minute.
    const points = [point(0, 100), point(10_000, 100), ...[0, 1, 2, 3, 4, 5].map((i) => point(20_000 + i * 10_000, 4, 1))];
    expect(recentRatePerMinute({ bucketMs: 10_000, points }, 80_000)).toBe(30);
    // Younger than a minute: over its age.
    expect(recentRatePerMinute({ bucketMs: 10_000, points: [point(0, 10)] }, 30_000)).toBe(20);
    // Nothing recorded lately: the rate is 0, the ETA unknown.
    expect(recentRatePerMinute({ bucketMs: 10_000, points }, 600_000)).toBe(0);
    // 80 s buckets: six of them, 480 s.
    expect(recentRatePerMinute({ bucketMs: 80_000, points: [point(0, 1000), ...[1, 2, 3, 4, 5, 6].map((i) => point(i * 80_000, 40))] }, 560_000)).toBe(30);
    expect(recentRatePerMinute({ bucketMs: 0, points: [] }, 1000)).toBeUndefined();
  });

  it('takes the average rate since the start when no recent rate is given', () => {
    expect(rateSinceStart(meta({ succeeded: 40, failed: 20, createdAt: 0 }), 120_000)).toBe(30);
    expect(rateSinceStart(meta({ succeeded: 10, createdAt: 0, finishedAt: 60_000 }), 600_000)).toBe(10);
    expect(rateSinceStart(meta({ createdAt: 5_000 }), 5_000)).toBe(0);
  });
});

/** Limiter statistics with nothing counted but what is given. */
function statsWith(over: Partial<Omit<LimiterStats, 'deferrals'>> & { deferrals?: Partial<Record<DeferralReason, number>> }): LimiterStats {
  const { deferrals, ...rest } = over;
  return {
    calls: 0, totalWaitMs: 0, avgWaitMs: 0, activeLeases: 0, tokensInWindow: 0, requestsInWindow: 0, nextSlotAtMs: 0, cooldownUntilMs: 0, holdUntilMs: 0,
    settled: 0, released: 0, cooldowns: 0, leasesReclaimed: 0, headerCorrections: 0, tokensReserved: 0, tokensUsed: 0, avgHoldMs: 0, nowMs: 0,
    ...rest,
    deferrals: { cooldown: 0, concurrency: 0, requests: 0, tokens: 0, stagger: 0, ...deferrals },
  };
}

describe('what binds now', () => {
  const books = { budgetMicros: 1_000_000, spentMicros: 900_000, unconfirmedMicros: 50_000 } as Parameters<typeof bindingNow>[1];

  it('names the run state first: paused, out of budget, ended', () => {
    expect(bindingNow(meta({ status: 'paused', statusReason: 'by ops' }), books, undefined)).toEqual({
      reason: 'paused',
      words: 'paused (by ops): workers take none of its brands until it is resumed',
    });
    expect(bindingNow(meta({ status: 'budget_exhausted' }), books, undefined)).toEqual({
      reason: 'budget',
      words: 'the budget: $0.95 of $1.00 used, the next call cannot be covered; raise the budget to continue',
    });
    expect(bindingNow(meta({ status: 'cancelled' }), books, undefined).reason).toBe('ended');
  });

  it('names a cooldown in force, then the limiter rule whose waits grew most since the previous look', () => {
    const cooling = { llm: statsWith({ cooldownUntilMs: 14_500, nowMs: 10_000 }) };
    expect(bindingNow(meta({}), books, { now: cooling })).toEqual({ reason: 'cooldown', words: 'a 429 cooldown: llm answered 429, every worker waits 5 s more' });

    // Cumulative counters: tokens waited most in total, but concurrency grew most lately.
    const before = { llm: statsWith({ deferrals: { tokens: 500, concurrency: 10 } }), tavily: statsWith({ deferrals: { requests: 3 } }) };
    const now = { llm: statsWith({ deferrals: { tokens: 502, concurrency: 40 }, activeLeases: 8 }), tavily: statsWith({ deferrals: { requests: 9 } }) };
    expect(bindingNow(meta({}), books, { now, before })).toEqual({ reason: 'concurrency', words: 'the concurrency cap of llm: 30 waits since the last look, 8 calls in flight' });
    expect(bindingNow(meta({}), books, { now })).toEqual({ reason: 'tokens', words: 'the tokens-per-minute window of llm: 502 waits so far' });
    expect(bindingNow(meta({}), books, { now, before: now })).toEqual({ reason: 'none', words: 'nothing: no limit made a call wait lately; the run goes as fast as its workers' });
  });
});
