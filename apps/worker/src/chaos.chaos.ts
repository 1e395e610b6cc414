import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakes, type Fakes, type LedgerEntry } from '@brandq/fakes';
import { normalizeBrandKey } from '@brandq/input';
import { CostLedger, microsToUsd } from '@brandq/ledger';
import { createBrandQueue } from '@brandq/queue';
import { createRedis, startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { RunStore, type BrandResult } from '@brandq/runs';
import { spawnTs, tcpConnectionsOf, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { enqueue, producerCli, stopWorkers, waitForWorkersReady, workerEnv, writeBrandsCsv } from './test-support.js';

/**
 * The chaos run (`pnpm test:chaos`): 1,000 brands on 5 worker processes while the fakes
 * answer with 429s, 5xx, timeouts and slow responses, a driver SIGKILLs a random worker
 * every 3-5 s and starts a new one, and Redis (AOF, fsync always) is killed and restarted
 * once mid-run. The end state is checked against the fakes' own ledgers.
 */
const BRANDS = 1000;
const WORKERS = 5;
const CONCURRENCY = 6;
const RPM = 900;
const TPM = 450_000;
const BUDGET_USD = 50;
const RUN = 'chaos-run';
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
/** A killed worker may have received an answer this long before it was stopped without booking it yet. */
const BOOKING_WINDOW_MS = 2000;

let redis: RedisServerHandle;
let fakes: Fakes;
let dir: string;
let workers: SpawnedProcess[] = [];
const retired: SpawnedProcess[] = [];

interface Kill {
  pid: number;
  /** When the victim was frozen (SIGSTOP); it handled nothing after this. */
  at: number;
  /** Its TCP connections at that moment (local ports), to attribute the fakes' requests. */
  ports: Set<number> | undefined;
}

beforeAll(async () => {
  redis = await startRedisServer({ args: AOF, keepDir: true });
  const faults = { 429: 0.03, 500: 0.03, timeout: 0.01 };
  fakes = await startFakes({
    // Slow answers up to 0.9 s, well under the clients' timeouts: a timed-out request the
    // provider still bills would be money no client could book.
    openai: { rpm: RPM, tpm: TPM, latencyMs: { min: 20, max: 900 }, faultRates: faults, timeoutFaultMs: 1500, seed: 101 },
    tavily: { rpm: RPM, latencyMs: { min: 10, max: 500 }, faultRates: faults, timeoutFaultMs: 1500, seed: 102 },
  });
  dir = await mkdtemp(join(tmpdir(), 'brandq-chaos-'));
});

afterAll(async () => {
  for (const w of [...workers, ...retired]) if (w.child.exitCode === null && w.child.signalCode === null) w.kill('SIGKILL');
  await fakes?.close();
  await redis?.stop();
});

describe('chaos: kill -9 workers, restart Redis, provider faults', () => {
  it('every brand exactly once, ledger = the providers\' bills, budget and limits held', { timeout: 300_000 }, async () => {
    const started = Date.now();
    const names = Array.from({ length: BRANDS }, (_, i) => `Chaos Brand ${String(i + 1).padStart(4, '0')}`);
    const csv = await writeBrandsCsv(dir, names, 'chaos.csv');
    const url = redis.url;
    const env = workerEnv(fakes, url, {
      OPENAI_RPM_LIMIT: String(RPM),
      OPENAI_RPM_BURST: '20',
      OPENAI_TPM_LIMIT: String(TPM),
      OPENAI_MAX_CONCURRENCY: '20',
      TAVILY_RPM_LIMIT: String(RPM),
      TAVILY_RPM_BURST: '20',
      TAVILY_MAX_CONCURRENCY: '20',
      OPENAI_TIMEOUT_SECONDS: '10',
      TAVILY_TIMEOUT_SECONDS: '10',
      JOB_LOCK_SECONDS: '3',
      JOB_ATTEMPTS: '12',
      JOB_BACKOFF_BASE_SECONDS: '0.2',
      OPENAI_BACKOFF_BASE_SECONDS: '0.2',
      OPENAI_RETRY_MAX_ATTEMPTS: '30',
      LIMITER_LEASE_SECONDS: '5',
      SHUTDOWN_GRACE_SECONDS: '10',
      REDIS_CONNECT_TIMEOUT_SECONDS: '60',
      LOG_LEVEL: 'error',
    });
    await enqueue(['--csv', csv, '--run', RUN, '--budget', String(BUDGET_USD)], env);

    const client = createRedis(url);
    client.on('error', () => undefined);
    const runs = new RunStore(client);
    const queue = createBrandQueue(client);
    queue.on('error', () => undefined);
    const spawnWorker = () => spawnTs('apps/worker/src/main.ts', ['--concurrency', String(CONCURRENCY)], env);
    workers = Array.from({ length: WORKERS }, spawnWorker);
    await waitForWorkersReady(queue, WORKERS, 90_000);
    const fleetReady = Date.now();

    // The driver: a kill every 3-5 s, Redis restarted once past half-way. Progress is read
    // from Redis, so it tolerates Redis being away.
    const kills: Kill[] = [];
    let redisRestart: { at: number; downMs: number } | undefined;
    let nextKillAt = Date.now() + 3000;
    let done = false;
    const deadline = Date.now() + 240_000;
    while (!done) {
      if (Date.now() > deadline) throw new Error(`chaos run not finished in time: ${JSON.stringify(await runs.getRun(RUN).catch(() => null))}\n${workers.map((w) => w.output().slice(-1500)).join('\n---\n')}`);
      const run = await runs.getRun(RUN).catch(() => undefined);
      if (run && run.status !== 'running') done = true;
      else if (run && !redisRestart && run.succeeded >= BRANDS / 2) {
        const down = Date.now();
        await redis.stop(); // SIGKILL: no shutdown save; the AOF (fsync always) is all there is
        // Away for a few seconds, as a restart or a failover is: calls complete meanwhile.
        await new Promise((r) => setTimeout(r, 3000));
        redis = await startRedisServer({ port: redis.port, dir: redis.dir, args: AOF, keepDir: true });
        redisRestart = { at: down, downMs: Date.now() - down };
        // No kill right after Redis is back: bookings retried through the outage land first
        // (otherwise a kill could catch one answered longer ago than BOOKING_WINDOW_MS).
        nextKillAt = Math.max(nextKillAt, Date.now() + 5000);
      } else if (Date.now() >= nextKillAt) {
        const index = Math.floor(Math.random() * workers.length);
        const victim = workers[index] as SpawnedProcess;
        const pid = victim.child.pid as number;
        victim.kill('SIGSTOP');
        const at = Date.now();
        const connections = await tcpConnectionsOf(pid);
        victim.kill('SIGKILL');
        await waitForExit(victim, 10_000);
        kills.push({ pid, at, ports: connections ? new Set(connections.map((c) => c.localPort)) : undefined });
        retired.push(victim);
        workers[index] = spawnWorker();
        nextKillAt = Date.now() + 3000 + Math.random() * 2000;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const finished = Date.now();
    await stopWorkers(workers);

    // ---- every valid brand has exactly one result
    const run = await runs.getRun(RUN);
    expect(run).toMatchObject({ status: 'completed', total: BRANDS, succeeded: BRANDS, failed: 0 });
    const results: BrandResult[] = [];
    for await (const r of runs.results(RUN)) results.push(r);
    expect(results).toHaveLength(BRANDS);
    expect(new Set(results.map((r) => r.key))).toEqual(new Set(names.map(normalizeBrandKey)));
    expect(await client.hlen(`brandq:{run:${RUN}}:results`)).toBe(BRANDS);

    // ---- no brand written to the output twice
    const out = join(dir, 'chaos.csv.out.csv');
    await producerCli('export', ['--run', RUN, '--out', out], env);
    const exported = (await readFile(out, 'utf8')).trim().split('\r\n').slice(1);
    const exportedBrands = exported.map((line) => line.split(',')[1] ?? '');
    expect(exported).toHaveLength(BRANDS);
    expect(new Set(exportedBrands).size).toBe(BRANDS);
    expect(exported.every((line) => line.split(',')[2] === 'success')).toBe(true);

    // ---- the ledger against the providers' bills
    const snapshot = await new CostLedger(client).snapshot(RUN);
    const kinds = [
      { name: 'llm', booked: snapshot.providers.llm, fake: fakes.openai.ledger.entries(), port: fakes.openai.port },
      { name: 'tavily', booked: snapshot.providers.tavily, fake: fakes.tavily.ledger.entries(), port: fakes.tavily.port },
    ];
    const lines: string[] = [];
    for (const k of kinds) {
      const billed = k.fake.filter((e) => e.costMicros > 0);
      const billedMicros = billed.reduce((s, e) => s + e.costMicros, 0);
      // Requests of a killed worker: answered after it was frozen (lost for sure), or just
      // before (it may not have booked them yet).
      const lost = attribute(billed, kills);
      const gapCalls = billed.length - k.booked.calls;
      const gapMicros = billedMicros - k.booked.costMicros;
      lines.push(
        `${k.name}: billed ${billed.length} calls $${microsToUsd(billedMicros).toFixed(6)}, booked ${k.booked.calls} calls $${microsToUsd(k.booked.costMicros).toFixed(6)}; ` +
          `gap ${gapCalls} calls $${microsToUsd(gapMicros).toFixed(6)}; killed workers' in-flight calls ${lost.certain.length} ($${microsToUsd(sum(lost.certain)).toFixed(6)}) + ${lost.possible.length} answered <${BOOKING_WINDOW_MS} ms before a kill ($${microsToUsd(sum(lost.possible)).toFixed(6)}); ` +
          `gap beyond the in-flight calls: ${gapCalls - lost.certain.length}`,
      );
      // Never booked more than billed; every missing call is one a killed worker had in hand.
      expect(gapCalls, k.name).toBeGreaterThanOrEqual(lost.certain.length);
      expect(gapCalls, k.name).toBeLessThanOrEqual(lost.certain.length + lost.possible.length);
      expect(gapMicros, k.name).toBeGreaterThanOrEqual(sum(lost.certain));
      expect(gapMicros, k.name).toBeLessThanOrEqual(sum(lost.certain) + sum(lost.possible));
      if (kills.length === 0) expect(gapMicros, k.name).toBe(0);
    }
    expect(snapshot.spentMicros).toBe(snapshot.providers.llm.costMicros + snapshot.providers.tavily.costMicros + snapshot.providers.sheets.costMicros);

    // ---- the budget: booked and actually billed both under it
    const budgetMicros = BUDGET_USD * 1_000_000;
    expect(snapshot.budgetMicros).toBe(budgetMicros);
    expect(snapshot.spentMicros).toBeLessThanOrEqual(budgetMicros);
    expect(fakes.openai.ledger.billedMicros() + fakes.tavily.ledger.billedMicros()).toBeLessThanOrEqual(budgetMicros);

    // ---- no limit window exceeded, as the providers counted
    const llmWindow = fakes.openai.ledger.maxRequestsInAnyWindow(60_000);
    const llmTokens = fakes.openai.ledger.maxTokensInAnyWindow(60_000);
    const tavilyWindow = fakes.tavily.ledger.maxRequestsInAnyWindow(60_000);
    const refusedByLimit = [...fakes.openai.ledger.entries(), ...fakes.tavily.ledger.entries()].filter((e) => e.rateLimitType !== null);
    expect(llmWindow).toBeLessThanOrEqual(RPM);
    expect(llmTokens).toBeLessThanOrEqual(TPM);
    expect(tavilyWindow).toBeLessThanOrEqual(RPM);
    expect(refusedByLimit).toEqual([]);

    const faultsOf = (entries: LedgerEntry[]) => ({
      429: entries.filter((e) => e.fault === 'status' && e.status === 429).length,
      500: entries.filter((e) => e.fault === 'status' && e.status === 500).length,
      timeout: entries.filter((e) => e.fault === 'timeout').length,
    });
    const report = [
      `chaos run: ${BRANDS} brands, ${WORKERS} workers x ${CONCURRENCY}, ${((finished - fleetReady) / 1000).toFixed(1)} s from a ready fleet (${((finished - started) / 1000).toFixed(1)} s in all)`,
      `  kills: ${kills.length} SIGKILLs (pids ${kills.map((k) => k.pid).join(' ')}), ${retired.length + workers.length} worker processes in all`,
      `  redis: killed at ${redisRestart ? ((redisRestart.at - fleetReady) / 1000).toFixed(1) : '?'} s, back after ${redisRestart?.downMs ?? '?'} ms (AOF, appendfsync always)`,
      `  results: ${results.length} (unique ${new Set(results.map((r) => r.key)).size}), export rows ${exported.length} (unique brands ${new Set(exportedBrands).size}), failed ${run?.failed}`,
      `  injected: llm ${JSON.stringify(faultsOf(fakes.openai.ledger.entries()))}, tavily ${JSON.stringify(faultsOf(fakes.tavily.ledger.entries()))}`,
      `  limits: llm max ${llmWindow}/${RPM} requests and ${llmTokens}/${TPM} tokens in any 60 s; tavily max ${tavilyWindow}/${RPM}; refused by the providers' limiters: ${refusedByLimit.length}`,
      `  cooldown violations (requests during an announced 429 wait, 250 ms grace): llm ${fakes.openai.ledger.cooldownViolations(250).length}, tavily ${fakes.tavily.ledger.cooldownViolations(250).length}`,
      ...lines.map((l) => `  ${l}`),
      `  budget: $${BUDGET_USD}, booked $${microsToUsd(snapshot.spentMicros).toFixed(6)}, billed $${microsToUsd(fakes.openai.ledger.billedMicros() + fakes.tavily.ledger.billedMicros()).toFixed(6)}, reserved now $${microsToUsd(snapshot.reservedMicros).toFixed(6)}`,
      `  paid calls per brand (llm): ${histogram(fakes.openai.ledger.entries().filter((e) => e.costMicros > 0).map((e) => e.brand ?? ''))}`,
    ];
    process.stdout.write(`${report.join('\n')}\n`);
    expect(kills.length).toBeGreaterThanOrEqual(5);
    expect(redisRestart).toBeDefined();

    await queue.close();
    client.disconnect();
  });
});

/** Billed requests a killed worker had: answered after it froze (certain loss) or shortly before (possible). */
function attribute(billed: LedgerEntry[], kills: Kill[]): { certain: LedgerEntry[]; possible: LedgerEntry[] } {
  const certain: LedgerEntry[] = [];
  const possible: LedgerEntry[] = [];
  for (const e of billed) {
    const done = e.completedAt ?? Number.POSITIVE_INFINITY;
    const kill = kills.find((k) => (k.ports === undefined || (e.clientPort !== undefined && k.ports.has(e.clientPort))) && e.at < k.at && done >= k.at - BOOKING_WINDOW_MS);
    if (!kill) continue;
    if (done >= kill.at) certain.push(e);
    else possible.push(e);
  }
  return { certain, possible };
}

function sum(entries: LedgerEntry[]): number {
  return entries.reduce((s, e) => s + e.costMicros, 0);
}

/** "1 call: 970 brands, 2 calls: 30 brands". */
function histogram(brands: string[]): string {
  const perBrand = new Map<string, number>();
  for (const b of brands) perBrand.set(b, (perBrand.get(b) ?? 0) + 1);
  const counts = new Map<number, number>();
  for (const n of perBrand.values()) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].sort((a, b) => a[0] - b[0]).map(([n, c]) => `${n} call${n === 1 ? '' : 's'}: ${c} brands`).join(', ');
}
