import { mkdtemp, readFile } from 'node:fs/promises';
import { FairScheduler } from '@brandq/fair-share';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '@brandq/errors';
import { startFakes, type Fakes, type LedgerEntry } from '@brandq/fakes';
import { readCsvBrands } from '@brandq/input';
import { CostLedger } from '@brandq/ledger';
import { brandJobId, createBrandQueue, type BrandQueue } from '@brandq/queue';
import { createRedis, getFreePort, startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { defaultRecipe } from '@brandq/recipe';
import { RunStore, type BrandResult } from '@brandq/runs';
import { spawnTs, waitForExit, type SpawnedProcess } from '@brandq/testing';
// The producer's own enqueue step, driven in-process so Redis can die between two of its requests.
import { enqueueRun } from '@brandq/run-service';
import { COMPOSE_REDIS_ARGS, OPEN_LIMITS, OPEN_TAVILY, enqueue, paidCallsPerBrand, shippedWorkerEnv, stopWorkers, waitFor, waitForRun, writeBrandsCsv } from './test-support.js';

/** Redis as the compose file runs it (checked below): AOF, fsync before every reply, noeviction. */
const AOF = [...COMPOSE_REDIS_ARGS];

let fakes: Fakes;
let dir: string;
const servers: RedisServerHandle[] = [];
const procs: SpawnedProcess[] = [];

beforeAll(async () => {
  fakes = await startFakes({ openai: { latencyMs: { min: 60, max: 160 }, seed: 51 }, tavily: { ...OPEN_TAVILY, latencyMs: { min: 20, max: 60 }, seed: 52 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-outage-'));
});
afterAll(async () => {
  await stopWorkers(procs.filter((p) => p.child.exitCode === null));
  await fakes?.close();
  for (const s of servers) await s.stop();
});

/** Requests each fake has received and not answered yet. */
function inFlight(fakes: Fakes): { llm: number; tavily: number } {
  const open = (entries: readonly LedgerEntry[]) => entries.filter((e) => e.completedAt === null).length;
  return { llm: open(fakes.openai.ledger.entries()), tavily: open(fakes.tavily.ledger.entries()) };
}

async function restart(server: RedisServerHandle): Promise<RedisServerHandle> {
  const next = await startRedisServer({ port: server.port, dir: server.dir, args: AOF, keepDir: true });
  servers.push(next);
  return next;
}

describe('the Redis these tests restart', () => {
  it('is configured as docker-compose.yml runs it (AOF, appendfsync always, noeviction)', async () => {
    const compose = await readFile(new URL('../../../docker-compose.yml', import.meta.url), 'utf8');
    const command = /exec redis-server ([^\n]*)/.exec(compose)?.[1] ?? '';
    for (let i = 0; i < AOF.length; i += 2) expect(command, `${AOF[i]} in docker-compose.yml`).toContain(`${AOF[i]} ${AOF[i + 1]}`);
  });
});

describe('Redis unavailable', () => {
  it('the producer retries with backoff for REDIS_CONNECT_TIMEOUT_SECONDS, then fails with one clear error', async () => {
    const port = await getFreePort();
    const started = Date.now();
    const producer = spawnTs('apps/producer/src/status.ts', [], { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_CONNECT_TIMEOUT_SECONDS: '3' });
    expect(await waitForExit(producer, 60_000)).toBe(1);
    const elapsed = Date.now() - started;
    const output = producer.output();
    expect(output).toMatch(new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port} is not answering; retrying for up to 3 s \\(REDIS_CONNECT_TIMEOUT_SECONDS\\)`));
    const attempts = Number(/\((\d+) attempts over \d+ s\): start redis-server or set REDIS_URL/.exec(output)?.[1]);
    // Backoff, not a busy loop: 0.25 + 0.5 + 1 + 2 s of waits fit in 3 s, so a handful of attempts.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(6);
    expect(elapsed).toBeGreaterThanOrEqual(3000);
    expect(output).not.toMatch(/unexpected error|\n\s+at /); // one line, no stack trace
  });

  it('producer and worker started before Redis wait for it; a worker survives a Redis restart (AOF) and loses nothing', { timeout: 180_000 }, async () => {
    const port = await getFreePort();
    const url = `redis://127.0.0.1:${port}`;
    const names = Array.from({ length: 40 }, (_, i) => `Outage Brand ${i + 1}`);
    const csv = await writeBrandsCsv(dir, names, 'outage.csv');
    const env = shippedWorkerEnv(fakes, url, {
      // The provider account's limits (the fakes' own), not a reliability setting: at the
      // shipped 60 LLM requests a minute the run would outlast the test.
      ...OPEN_LIMITS,
      // Redis is started only once both processes said they wait for it; on a loaded 2-core
      // machine starting two TypeScript processes can take longer than the shipped 30 s.
      REDIS_CONNECT_TIMEOUT_SECONDS: '120',
    });

    const producer = spawnTs('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', 'outage-run', '--no-follow'], env);
    procs.push(producer);
    await waitFor('the producer to say it retries', async () => /is not answering; retrying for up to 120 s/.test(producer.output()), 60_000, 100);
    const worker = spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], env);
    procs.push(worker);
    await waitFor('the worker to say it retries', async () => /Redis is not answering yet; the worker keeps retrying/.test(worker.output()), 60_000, 100);

    let server = await startRedisServer({ port, args: AOF, keepDir: true });
    servers.push(server);
    expect(await waitForExit(producer, 90_000), producer.output()).toBe(0);
    expect(producer.output()).toMatch(/answered after \d+ attempts/);
    expect(producer.output()).toContain('run outage-run: 40 brands enqueued');

    const client = createRedis(url);
    client.on('error', () => undefined);
    const runs = new RunStore(client);
    await waitForRun(runs, 'outage-run', (r) => r.succeeded >= 8, 90_000);
    // Mid-run, with a provider call in flight (its answer lands while Redis is away): Redis
    // dies without a goodbye, stays away a moment, comes back on its AOF.
    const flyingAtStop = await waitFor('a provider call in flight', async () => {
      const flying = inFlight(fakes);
      return flying.llm + flying.tavily > 0 ? flying : undefined;
    }, 30_000, 5);
    await server.stop();
    await new Promise((r) => setTimeout(r, 1500));
    expect(worker.child.exitCode).toBeNull();
    server = await restart(server);
    const run = await waitForRun(runs, 'outage-run', (r) => r.status !== 'running', 120_000);
    expect(run).toMatchObject({ status: 'completed', total: 40, succeeded: 40, failed: 0 });
    const results: BrandResult[] = [];
    for await (const r of runs.results('outage-run')) results.push(r);
    expect(results.map((r) => r.brand).sort()).toEqual([...names].sort());
    // Paid calls from the providers' own ledgers: a call in flight when Redis died is booked
    // when it is back (the booking retries), so at most those calls are ever paid again.
    for (const [name, ledger] of [['llm', fakes.openai.ledger], ['tavily', fakes.tavily.ledger]] as const) {
      const paid = paidCallsPerBrand(ledger, names);
      process.stdout.write(`redis restart under a worker, ${name}: ${flyingAtStop[name]} calls in flight at the kill; paid calls ${paid.histogram}\n`);
      expect(paid.unpaid, name).toEqual([]);
      expect(paid.unattributed, name).toBe(0);
      expect(paid.duplicates, name).toBeLessThanOrEqual(flyingAtStop[name]);
    }
    expect(worker.child.exitCode).toBeNull();
    await stopWorkers([worker]);
    expect(worker.child.exitCode).toBe(0);
    client.disconnect();
  });
});

describe('money across a Redis restart', () => {
  it('every call the providers billed while Redis was away is booked once: ledger = bills, to the micro-dollar', { timeout: 180_000 }, async () => {
    // Slow answers, so calls are in flight when Redis dies and complete while it is away.
    const slow = await startFakes({ openai: { latencyMs: { min: 400, max: 2500 }, seed: 61 }, tavily: { ...OPEN_TAVILY, latencyMs: { min: 300, max: 2000 }, seed: 62 } });
    let server = await startRedisServer({ args: AOF, keepDir: true });
    servers.push(server);
    try {
      const names = Array.from({ length: 48 }, (_, i) => `Ledger Outage Brand ${i + 1}`);
      const csv = await writeBrandsCsv(dir, names, 'ledger-outage.csv');
      // The provider account's limits (the fakes' own): this test is about Redis, and with
      // the shipped 3 concurrent LLM calls too few would be in flight when Redis dies.
      const env = shippedWorkerEnv(slow, server.url, { ...OPEN_LIMITS, LOG_LEVEL: 'error' });
      await enqueue(['--csv', csv, '--run', 'ledger-outage', '--budget', '20'], env);
      const workers = [spawnTs('apps/worker/src/main.ts', ['--concurrency', '8'], env), spawnTs('apps/worker/src/main.ts', ['--concurrency', '8'], env)];
      procs.push(...workers);
      const client = createRedis(server.url);
      client.on('error', () => undefined);
      const runs = new RunStore(client);
      await waitForRun(runs, 'ledger-outage', (r) => r.succeeded >= 12, 90_000);
      const flyingAtStop = inFlight(slow);
      const flying = flyingAtStop.llm + flyingAtStop.tavily;
      await server.stop();
      const down = Date.now();
      // Away long enough for every call in flight to complete (billed) with no Redis to book it in.
      await new Promise((r) => setTimeout(r, 5000));
      const answeredWhileDown = [...slow.openai.ledger.entries(), ...slow.tavily.ledger.entries()].filter((e) => e.costMicros > 0 && (e.completedAt ?? 0) > down).length;
      server = await restart(server);
      await waitForRun(runs, 'ledger-outage', (r) => r.status !== 'running', 120_000);
      await stopWorkers(workers);
      const run = await runs.getRun('ledger-outage');
      expect(run).toMatchObject({ status: 'completed', succeeded: 48, failed: 0 });
      const ledger = await new CostLedger(client).snapshot('ledger-outage');
      process.stdout.write(
        `redis outage: ${flying} calls in flight at the kill, ${answeredWhileDown} billed while Redis was away; ` +
          `llm booked ${ledger.providers.llm.calls} calls ${ledger.providers.llm.costMicros} µ$ vs billed ${slow.openai.ledger.filter((e) => e.costMicros > 0).length} calls ${slow.openai.ledger.billedMicros()} µ$; ` +
          `tavily booked ${ledger.providers.tavily.calls} calls ${ledger.providers.tavily.costMicros} µ$ vs billed ${slow.tavily.ledger.filter((e) => e.costMicros > 0).length} calls ${slow.tavily.ledger.billedMicros()} µ$\n`,
      );
      expect(answeredWhileDown).toBeGreaterThan(0);
      expect(ledger.providers.llm.costMicros).toBe(slow.openai.ledger.billedMicros());
      expect(ledger.providers.tavily.costMicros).toBe(slow.tavily.ledger.billedMicros());
      expect(ledger.providers.llm.calls).toBe(slow.openai.ledger.filter((e) => e.costMicros > 0).length);
      expect(ledger.providers.tavily.calls).toBe(slow.tavily.ledger.filter((e) => e.costMicros > 0).length);
      for (const [name, fake] of [['llm', slow.openai.ledger], ['tavily', slow.tavily.ledger]] as const) {
        const paid = paidCallsPerBrand(fake, names);
        process.stdout.write(`  ${name} paid calls: ${paid.histogram}\n`);
        expect(paid.unpaid, name).toEqual([]);
        expect(paid.unattributed, name).toBe(0);
        expect(paid.duplicates, name).toBeLessThanOrEqual(flyingAtStop[name]);
      }
      client.disconnect();
    } finally {
      await slow.close();
    }
  });
});

describe('nothing is half-enqueued', () => {
  it('Redis dying between the run and its jobs leaves a complete run that --resume brings to all its jobs', { timeout: 120_000 }, async () => {
    const names = Array.from({ length: 700 }, (_, i) => `Half Brand ${String(i + 1).padStart(3, '0')}`);
    const csv = await writeBrandsCsv(dir, names, 'half.csv');
    let server = await startRedisServer({ args: AOF, keepDir: true });
    servers.push(server);
    const client = createRedis(server.url);
    client.on('error', () => undefined);
    const queue = createBrandQueue(client);
    queue.on('error', () => undefined);
    const { brands } = await readCsvBrands(csv);
    const loaded = { source: { type: 'csv' as const, path: csv }, sourceKey: `csv:${csv}`, brands, skipped: [] };

    // enqueueRun adds jobs 500 at a time: Redis is killed right before the second batch.
    let batches = 0;
    const dying = {
      getJobState: (id: string) => queue.getJobState(id),
      addBulk: async (jobs: Parameters<BrandQueue['addBulk']>[0]) => {
        batches += 1;
        if (batches === 2) await server.stop();
        return queue.addBulk(jobs);
      },
    } as unknown as BrandQueue;
    const error = await enqueueRun(
      { runs: new RunStore(client), ledger: new CostLedger(client), queue: dying, scheduler: new FairScheduler(client, queue) },
      { runId: 'half-run', loaded, recipe: defaultRecipe(), budgetMicros: 0, attempts: 3, retention: { keepCompleted: 100, keepFailed: 100 } },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/Redis failed while adding the jobs of run half-run \(500 of 700 added\): the run and all its brands are stored/);
    expect((error as Error).message).toContain('pnpm enqueue --resume --run half-run');
    await queue.close().catch(() => undefined);
    client.disconnect();

    // Back on its AOF: the run is whole (every brand), the queue holds the first batch only.
    server = await restart(server);
    const admin = createRedis(server.url);
    const runs = new RunStore(admin);
    const run = await runs.getRun('half-run');
    expect(run).toMatchObject({ status: 'running', total: 700 });
    const adminQueue = createBrandQueue(admin);
    expect(await adminQueue.count()).toBe(500);

    // The documented way back: the resume adds exactly the missing jobs, nothing twice.
    const env = { ...fakes.env, REDIS_URL: server.url };
    const resumed = await enqueue(['--resume', '--run', 'half-run'], env);
    expect(resumed.output()).toMatch(/resuming run half-run: processed 0\/700 .* 700 brands queued/);
    expect(await adminQueue.count()).toBe(700);
    const expectedIds = new Set(brands.map((b) => brandJobId('half-run', b.key)));
    const ids = new Set((await adminQueue.getJobs(['waiting', 'prioritized'], 0, -1)).map((j) => j.id));
    expect(ids).toEqual(expectedIds);
    // The run is listed (its index written on creation or on resume).
    expect((await runs.listRuns(10)).map((r) => r.id)).toContain('half-run');
    await adminQueue.close();
    admin.disconnect();
  });

  it('Redis dying before the run is written leaves nothing, and says to run the command again', async () => {
    const server = await startRedisServer();
    servers.push(server);
    const client = createRedis(server.url);
    client.on('error', () => undefined);
    const queue = createBrandQueue(client);
    queue.on('error', () => undefined);
    const csv = await writeBrandsCsv(dir, ['Never Brand 1', 'Never Brand 2'], 'never.csv');
    const { brands } = await readCsvBrands(csv);
    await server.stop();
    const error = await enqueueRun(
      { runs: new RunStore(client), ledger: new CostLedger(client), queue, scheduler: new FairScheduler(client, queue) },
      { runId: 'never-run', loaded: { source: { type: 'csv', path: csv }, sourceKey: `csv:${csv}`, brands, skipped: [] }, recipe: defaultRecipe(), budgetMicros: 0, attempts: 3, retention: { keepCompleted: 1, keepFailed: 1 } },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/Redis failed while creating run never-run: no job was enqueued\. Run the same command again with --run never-run/);
    await queue.close().catch(() => undefined);
    client.disconnect();
  });
});
