import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '@brandq/config';
import { DEFAULT_LLM_PRICING, type Fakes, type LedgerEntry, type LlmTier } from '@brandq/fakes';
import { CostLedger, type LedgerSnapshot } from '@brandq/ledger';
import { createLimiter } from '@brandq/limiter';
import type { StoredJobData } from '@brandq/pipeline';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { defaultRecipe } from '@brandq/recipe';
import { batchKeys, createRedis, runKeys, startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { createRun } from '@brandq/run-service';
import { RunStore } from '@brandq/runs';
import { useTestRedis, type SpawnedProcess } from '@brandq/testing';
import { drainRunFleet, startRunFleet, stopRunFleet, type RunFleet } from './test-run-fleet.js';
import {
  COMPOSE_REDIS_ARGS,
  enqueue,
  freezeAndKill,
  startOpenFakes,
  startWorkers,
  stopWorkers,
  waitFor,
  waitForRun,
  waitForWorkersReady,
  workerEnv,
  writeBrandsCsv,
  type Kill,
} from './test-support.js';

/**
 * OpenAI's cheaper tiers on a real fleet: worker processes, Redis and the fake OpenAI, whose
 * own ledger bills every chat request and batch line at its tier's price. Money is checked
 * against those bills (never against brandq's records), and submissions against the fake's
 * record of every batch created.
 */
const redis = useTestRedis();

const WORKERS = 2;
const CONCURRENCY = 8;
/**
 * The batch coordinator's pace, short so a batch run takes seconds: a run step's parked
 * requests go as one batch a second after the first parked, and open batches are polled
 * twice a second. Its lease is 3 s instead of the shipped 30 s so that a killed
 * coordinator is replaced within seconds: the takeover path is the same, only sooner.
 */
const BATCH_PACE = { BATCH_GATHER_SECONDS: '1', BATCH_POLL_SECONDS: '0.5', BATCH_LEASE_SECONDS: '3' };
/** The fake's model is served with Flex only where the preflight is told it is (brandq's own list has no gpt-4o-mini). */
const FLEX_MODELS = { LLM_FLEX_MODELS: 'gpt-4o-mini' };
/** OpenAI bills Flex and Batch tokens at half the standard price (brandq's default and the fake's). */
const CHEAPER_TIER_FACTOR = 0.5;

const brandsOf = (runId: string, count: number) => Array.from({ length: count }, (_, i) => `${runId} brand ${String(i + 1).padStart(2, '0')}`);

/** The chat requests and batch lines the fake OpenAI served for `names`, by the tier it billed them at. */
function llmEntriesOf(fakes: Fakes, names: readonly string[]): LedgerEntry[] {
  const wanted = new Set(names);
  return fakes.openai.ledger.filter((e) => e.tier !== undefined && e.brand !== null && wanted.has(e.brand));
}

/** A billed entry's cost at `tier`, computed from the standard price here rather than by the fake's tier code. */
function priceAt(tier: LlmTier, e: LedgerEntry): number {
  const factor = tier === 'standard' ? 1 : CHEAPER_TIER_FACTOR;
  return Math.round((e.promptTokens ?? 0) * DEFAULT_LLM_PRICING.inputPerMillion * factor + (e.completionTokens ?? 0) * DEFAULT_LLM_PRICING.outputPerMillion * factor);
}

/**
 * The run's ledger equals the fake's bills at `tier`, to the micro-dollar and token, every
 * brand paid once at that tier and nothing at another, and every bill at the tier's price.
 */
function expectBookedAtTier(fakes: Fakes, money: LedgerSnapshot, tier: LlmTier, names: readonly string[]): void {
  const totals = fakes.openai.ledger.tierTotals();
  for (const other of ['standard', 'flex', 'batch'] as const) {
    if (other !== tier) expect(totals[other].paidCalls, `LLM calls billed at ${other}`).toBe(0);
  }
  const billed = llmEntriesOf(fakes, names).filter((e) => e.billed);
  expect(billed.every((e) => e.tier === tier)).toBe(true);
  expect(countBy(billed, (e) => e.brand ?? '')).toEqual(new Map(names.map((n) => [n, 1])));
  for (const e of billed) expect(e.costMicros, `${e.brand} at the ${tier} price`).toBe(priceAt(tier, e));
  expect(totals[tier].paidCalls).toBe(names.length);
  expect(money.providers.llm).toMatchObject({
    calls: names.length,
    costMicros: totals[tier].billedMicros,
    inputTokens: totals[tier].promptTokens,
    outputTokens: totals[tier].completionTokens,
    unconfirmedCalls: 0,
    unconfirmedMicros: 0,
  });
  expect(money.reservedMicros).toBe(0);
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** What the same tokens would have cost at the standard price: the saving a report prints. */
function atStandardPrice(entries: readonly LedgerEntry[]): number {
  return entries.filter((e) => e.billed).reduce((sum, e) => sum + priceAt('standard', e), 0);
}

/** The run's batch bookkeeping in Redis, once it is over: nothing parked, claimed or open, an outcome per brand. */
async function batchStateOf(client: ReturnType<typeof createRedis>, runId: string) {
  const keys = runKeys(runId);
  const outcomes = Object.values(await client.hgetall(keys.batchOutcomes)).map((raw) => (JSON.parse(raw) as { kind: string }).kind);
  return {
    pending: await client.hlen(keys.batchPending),
    intents: await client.hlen(keys.batchIntents),
    openBatches: await client.zcard(batchKeys.open),
    outcomes: Object.fromEntries(countBy(outcomes, (k) => k)),
  };
}

describe('LLM tiers on a fleet of worker processes', () => {
  let fleet: RunFleet | undefined;
  let fakes: Fakes;
  let client: RunFleet['client'];
  let queue: BrandQueue;
  let runs: RunStore;
  let config: Config;
  const started: string[] = [];

  beforeAll(async () => {
    fleet = await startRunFleet(redis.url, {
      fakes: { openai: { latencyMs: { min: 5, max: 30 }, seed: 81, batchDelayMs: 1500 }, tavily: { latencyMs: { min: 5, max: 20 }, seed: 82 } },
      env: { ...BATCH_PACE, ...FLEX_MODELS },
      workers: WORKERS,
      concurrency: CONCURRENCY,
    });
    ({ fakes, client, queue, runs, config } = fleet);
  });

  afterEach(async () => {
    // The next test starts on an idle fleet, no batch open, and a fake with empty ledgers:
    // what a failed test left running is cancelled (its open batches with it).
    await drainRunFleet(fleet as RunFleet, started.splice(0), {
      what: 'an idle fleet with no batch open',
      timeoutMs: 30_000,
      alsoIdle: async () => (await client.zcard(batchKeys.open)) === 0,
    });
    fakes.reset();
  });

  afterAll(() => stopRunFleet(fleet));

  async function startRun(runId: string, names: readonly string[], llm: { tier: LlmTier; flexFallbackAfterMs?: number }): Promise<void> {
    const outcome = await createRun(
      { redis: client, queue, config },
      {
        source: { csvText: `brand\n${names.join('\n')}\n` },
        runId,
        budgetMicros: 0,
        recipe: defaultRecipe(),
        noCache: true,
        force: false,
        allowPartial: true,
        refuseDuringCooldown: false,
        llmTier: llm.tier,
        ...(llm.flexFallbackAfterMs === undefined ? {} : { flexFallbackAfterMs: llm.flexFallbackAfterMs }),
      },
    );
    expect(outcome.kind).toBe('created');
    started.push(runId);
  }

  /**
   * Waits for the run to complete with every brand done; on a timeout the error names each
   * brand still waiting, its job's state and its last recorded wait.
   */
  async function completed(runId: string, count: number, timeoutMs = 60_000): Promise<LedgerSnapshot> {
    const run = await waitForRun(runs, runId, (r) => r.status !== 'running', timeoutMs).catch(async (err: unknown) => {
      const waiting = (await queue.getJobs(['active', 'waiting', 'prioritized', 'delayed'])).filter((j) => j.data.runId === runId);
      const why = await Promise.all(waiting.map(async (j) => `${j.data.name}: ${await j.getState()}, last: ${JSON.stringify((j.data as StoredJobData).history?.at(-1) ?? null)}`));
      throw new Error(`${String(err)}\n${why.join('\n')}`);
    });
    expect(run).toMatchObject({ status: 'completed', total: count, succeeded: count, failed: 0 });
    return new CostLedger(client).snapshot(runId);
  }

  it('a flex run: every brand done, each LLM call billed once at the flex price and booked as billed, nothing at standard', { timeout: 90_000 }, async () => {
    const names = brandsOf('flex-run', 15);
    const started = Date.now();
    await startRun('flex-run', names, { tier: 'flex' });
    const money = await completed('flex-run', names.length);
    expectBookedAtTier(fakes, money, 'flex', names);
    const billed = fakes.openai.ledger.tierTotals().flex.billedMicros;
    process.stdout.write(`flex run: ${names.length} brands in ${((Date.now() - started) / 1000).toFixed(1)} s; LLM billed ${billed} µ$ at flex = booked ${money.providers.llm.costMicros} µ$ (standard: ${atStandardPrice(llmEntriesOf(fakes, names))} µ$)\n`);
  });

  it('a batch run: every brand done, each request in one batch, billed once at the batch price and booked as billed', { timeout: 90_000 }, async () => {
    const names = brandsOf('batch-run', 15);
    const started = Date.now();
    await startRun('batch-run', names, { tier: 'batch' });
    const money = await completed('batch-run', names.length);
    expectBookedAtTier(fakes, money, 'batch', names);
    const batches = fakes.openai.ledger.batches();
    expect(batches.every((b) => b.status === 'completed')).toBe(true);
    expect(batches.flatMap((b) => b.customIds)).toHaveLength(names.length);
    expect(fakes.openai.ledger.batchCustomIdsInSeveralBatches()).toEqual([]);
    expect(fakes.openai.ledger.batchCustomIdsBilledTwice()).toEqual([]);
    expect(await batchStateOf(client, 'batch-run')).toEqual({ pending: 0, intents: 0, openBatches: 0, outcomes: { answered: names.length } });
    const billed = fakes.openai.ledger.tierTotals().batch.billedMicros;
    process.stdout.write(
      `batch run: ${names.length} brands in ${((Date.now() - started) / 1000).toFixed(1)} s, ${batches.length} batch(es) of ${batches.map((b) => b.lineCount).join(', ')}; ` +
        `LLM billed ${billed} µ$ at batch = booked ${money.providers.llm.costMicros} µ$ (standard: ${atStandardPrice(llmEntriesOf(fakes, names))} µ$)\n`,
    );
  });

  describe('Flex capacity shortages (429 Resource Unavailable)', () => {
    const limiter = () => createLimiter({ redis: client, providers: { llm: { rpm: 1, burst: 1 } } });

    it('are waited out without a fleet cooldown and unbilled: the refused brands finish at flex, booked as billed', { timeout: 90_000 }, async () => {
      const names = brandsOf('flex-short', 12);
      const refusals = 8;
      const before = await limiter().stats('llm');
      fakes.openai.injectFlexShortage(refusals);
      const started = Date.now();
      await startRun('flex-short', names, { tier: 'flex' });
      // A refused brand waits the flex backoff (OPENAI_BACKOFF_BASE_SECONDS, 2 s, doubled per
      // refusal): with 8 refusals spread over 12 brands, well within 20 s.
      const money = await completed('flex-short', names.length, 20_000);
      const after = await limiter().stats('llm');

      const refused = llmEntriesOf(fakes, names).filter((e) => e.errorCode === 'resource_unavailable');
      expect(refused).toHaveLength(refusals);
      expect(refused.every((e) => e.status === 429 && e.tier === 'flex' && !e.billed && e.costMicros === 0)).toBe(true);
      // Not a rate limit: no cooldown held the fleet, and the fake announced none.
      expect(after.cooldowns - before.cooldowns, 'fleet cooldowns recorded').toBe(0);
      expect(fakes.openai.ledger.filter((e) => e.cooldownUntil !== null || e.errorCode === 'rate_limit_exceeded')).toEqual([]);
      expectBookedAtTier(fakes, money, 'flex', names);
      process.stdout.write(`flex shortage: ${refusals} refusals over ${countBy(refused, (e) => e.brand ?? '').size} brands, all done at flex in ${((Date.now() - started) / 1000).toFixed(1)} s; cooldowns ${after.cooldowns - before.cooldowns}\n`);
    });

    it('that outlast --flex-fallback-after send the brands at the standard tier, booked at the standard price', { timeout: 90_000 }, async () => {
      const names = brandsOf('flex-fallback', 12);
      const before = await limiter().stats('llm');
      // Flex refuses everything for the whole run.
      fakes.openai.injectFlexShortage(10_000);
      const started = Date.now();
      await startRun('flex-fallback', names, { tier: 'flex', flexFallbackAfterMs: 1000 });
      const money = await completed('flex-fallback', names.length, 20_000);
      const after = await limiter().stats('llm');

      const refused = llmEntriesOf(fakes, names).filter((e) => e.errorCode === 'resource_unavailable');
      expect(refused.every((e) => e.status === 429 && !e.billed && e.costMicros === 0)).toBe(true);
      // Each brand kept asking flex until its first refusal was a second old (the first retry
      // waits out the flex backoff, longer than that), then went standard once.
      const refusalsPerBrand = countBy(refused, (e) => e.brand ?? '');
      for (const name of names) expect(refusalsPerBrand.get(name), name).toBeGreaterThanOrEqual(2);
      expect(after.cooldowns - before.cooldowns, 'fleet cooldowns recorded').toBe(0);
      expectBookedAtTier(fakes, money, 'standard', names);
      process.stdout.write(
        `flex fallback: ${names.length} brands in ${((Date.now() - started) / 1000).toFixed(1)} s, ${refused.length} refusals (per brand ${[...new Set(refusalsPerBrand.values())].join('/')}), ` +
          `all at standard: billed ${fakes.openai.ledger.tierTotals().standard.billedMicros} µ$ = booked ${money.providers.llm.costMicros} µ$\n`,
      );
    });
  });

  it('a parked brand that looks again before its batch is done (its recheck, or a promote from the board) submits nothing again', { timeout: 90_000 }, async () => {
    const names = brandsOf('batch-relook', 8);
    fakes.openai.configure({ batchDelayMs: 4000 });
    try {
      await startRun('batch-relook', names, { tier: 'batch' });
      // Every request is in a batch that is still running at the provider.
      await waitFor('every request in a running batch', async () => {
        const running = fakes.openai.ledger.batches().filter((b) => b.status === 'validating' || b.status === 'in_progress');
        return running.flatMap((b) => b.customIds).length === names.length;
      }, 30_000, 20);
      // What the job's own recheck does after batchParkRecheckMs (30 s and more), sooner.
      const parked = (await queue.getJobs(['delayed'])).filter((j) => j.data.runId === 'batch-relook');
      expect(parked).toHaveLength(names.length);
      for (const job of parked) await job.promote();
      await completed('batch-relook', names.length);
      // Whatever the relook started has ended too.
      await waitFor('no batch open', async () => (await client.zcard(batchKeys.open)) === 0 && fakes.openai.ledger.batches().every((b) => b.endedAt !== null), 30_000);
      const batches = fakes.openai.ledger.batches();
      process.stdout.write(`batch relook: ${batches.length} batch(es) of ${batches.map((b) => b.lineCount).join(', ')}; custom_ids in several batches: ${fakes.openai.ledger.batchCustomIdsInSeveralBatches().length}\n`);
      expect(fakes.openai.ledger.batchCustomIdsInSeveralBatches()).toEqual([]);
      expect(fakes.openai.ledger.batchCustomIdsBilledTwice()).toEqual([]);
      expect(await batchStateOf(client, 'batch-relook')).toEqual({ pending: 0, intents: 0, openBatches: 0, outcomes: { answered: names.length } });
      expectBookedAtTier(fakes, await new CostLedger(client).snapshot('batch-relook'), 'batch', names);
    } finally {
      fakes.openai.configure({ batchDelayMs: 1500 });
    }
  });
});

describe('a batch run whose coordinator is killed mid-batch, with Redis restarted', () => {
  const servers: RedisServerHandle[] = [];
  const workers: SpawnedProcess[] = [];
  let fakes: Fakes;

  beforeAll(async () => {
    // Answers slow enough (each Files and Batches request too) that the coordinator can be
    // frozen with its batches.create sent and unanswered: the batch exists at the provider,
    // and no record in Redis says so.
    fakes = await startOpenFakes({ openai: { latencyMs: { min: 300, max: 600 }, seed: 91, batchDelayMs: 3000 }, tavily: { latencyMs: { min: 5, max: 20 }, seed: 92 } });
  });

  afterAll(async () => {
    await stopWorkers(workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null));
    await fakes?.close();
    for (const s of servers) await s.stop();
  });

  it('completes every brand with no request submitted twice, billed twice or lost, and books what the batches billed', { timeout: 150_000 }, async () => {
    // Redis as docker-compose.yml runs it (AOF, fsync always): a restart keeps every write.
    let server = await startRedisServer({ args: [...COMPOSE_REDIS_ARGS], keepDir: true });
    servers.push(server);
    const env = workerEnv(fakes, server.url, BATCH_PACE);
    const client = createRedis(server.url);
    client.on('error', () => undefined);
    const queue = createBrandQueue(client);
    queue.on('error', () => undefined);
    const runs = new RunStore(client);
    const names = brandsOf('batch-crash', 20);
    const csv = await writeBrandsCsv(await mkdtemp(join(tmpdir(), 'brandq-tiers-')), names);

    workers.push(...startWorkers(WORKERS, env, CONCURRENCY));
    await waitForWorkersReady(queue, WORKERS);
    const started = Date.now();
    await enqueue(['--csv', csv, '--run', 'batch-crash', '--llm-tier', 'batch'], env);
    expect((await runs.getRun('batch-crash'))?.llmTier).toBe('batch');

    // The worker holding the coordinator's lease: its token names its pid.
    const holderPid = await waitFor('a batch coordinator', async () => Number((await client.get(batchKeys.lease))?.split(':')[0] ?? 0) || undefined, 30_000);
    const coordinator = workers.find((w) => w.child.pid === holderPid);
    expect(coordinator, `lease holder ${holderPid} is one of the fleet`).toBeDefined();
    await waitFor('the first batch file uploaded', async () => fakes.openai.ledger.filter((e) => e.method === 'POST' && e.path.endsWith('/files')).length > 0, 30_000, 20);
    const creatingFrom = (k: Kill) => fakes.openai.ledger.filter((e) => e.method === 'POST' && e.path.endsWith('/batches') && e.completedAt === null && e.clientPort !== undefined && k.ports?.has(e.clientPort) === true).length > 0;
    const kill = await freezeAndKill(coordinator as SpawnedProcess, { when: creatingFrom, timeoutMs: 20_000 });
    expect(creatingFrom(kill), 'killed with its batches.create sent and unanswered').toBe(true);
    const atKill = { batches: fakes.openai.ledger.batches().map((b) => ({ id: b.id, status: b.status, lines: b.lineCount })), succeeded: (await runs.getRun('batch-crash'))?.succeeded ?? 0 };
    expect(atKill.batches.some((b) => b.status === 'validating' || b.status === 'in_progress'), 'a batch running at the kill').toBe(true);

    // Redis dies without a goodbye and comes back on its AOF; a new worker joins the survivor.
    await server.stop();
    await new Promise((r) => setTimeout(r, 1000));
    server = await startRedisServer({ port: server.port, dir: server.dir, args: [...COMPOSE_REDIS_ARGS], keepDir: true });
    servers.push(server);
    workers.push(...startWorkers(1, env, CONCURRENCY));

    const run = await waitForRun(runs, 'batch-crash', (r) => r.status !== 'running', 120_000);
    const doneAfterKillMs = Date.now() - kill.at;
    expect(run).toMatchObject({ status: 'completed', total: names.length, succeeded: names.length, failed: 0 });
    const newHolder = Number((await client.get(batchKeys.lease))?.split(':')[0]);
    expect(newHolder).not.toBe(kill.pid);

    const ledger = fakes.openai.ledger;
    const batches = ledger.batches();
    process.stdout.write(
      `batch coordinator killed: at the kill ${atKill.succeeded} brands done, batches ${JSON.stringify(atKill.batches)}; ` +
        `run done ${(doneAfterKillMs / 1000).toFixed(1)} s after the kill (${((Date.now() - started) / 1000).toFixed(1)} s in all); ` +
        `${batches.length} batch(es) in all of ${batches.map((b) => `${b.lineCount} ${b.status}`).join(', ')}; lease now with pid ${newHolder}\n`,
    );
    // Nothing submitted twice (the batch created under the kill was adopted and collected, not created again), none billed twice.
    for (const b of atKill.batches) expect(batches.find((x) => x.id === b.id)?.status, b.id).toBe('completed');
    expect(ledger.batchCustomIdsInSeveralBatches()).toEqual([]);
    expect(ledger.batchCustomIdsBilledTwice()).toEqual([]);
    // None lost: every brand's request went in a batch, was answered and handed back.
    expect(new Set(batches.flatMap((b) => b.customIds)).size).toBe(names.length);
    expect(await batchStateOf(client, 'batch-crash')).toEqual({ pending: 0, intents: 0, openBatches: 0, outcomes: { answered: names.length } });
    expectBookedAtTier(fakes, await new CostLedger(client).snapshot('batch-crash'), 'batch', names);

    await stopWorkers(workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null));
    await queue.close();
    client.disconnect();
  });
});
