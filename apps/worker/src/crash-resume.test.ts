import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakes, type Fakes, type LedgerEntry } from '@brandq/fakes';
import { CostLedger } from '@brandq/ledger';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import {
  OPEN_LIMITS,
  OPEN_TAVILY,
  callsOfKilledWorkers,
  enqueue,
  freezeAndKill,
  type Kill,
  paidCallsPerBrand,
  shippedWorkerEnv,
  startWorkers,
  stopWorkers,
  waitForRun,
  writeBrandsCsv,
} from './test-support.js';

const redis = useTestRedis();
const CONCURRENCY = 6;
let fakes: Fakes;
let dir: string;
const workers: SpawnedProcess[] = [];

beforeAll(async () => {
  // Answers slow enough that a worker usually has calls in flight: the kill below waits for one.
  fakes = await startFakes({ openai: { latencyMs: { min: 200, max: 800 }, seed: 5 }, tavily: { ...OPEN_TAVILY, latencyMs: { min: 100, max: 400 }, seed: 6 } });
  dir = await mkdtemp(join(tmpdir(), 'brandq-crash-'));
});
afterAll(async () => {
  await stopWorkers(workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null));
  await fakes?.close();
});

describe('a worker killed with SIGKILL mid-run, at the shipped defaults', () => {
  it('loses nothing and pays again only for the calls it had in flight: after --resume every brand has exactly one result', { timeout: 240_000 }, async () => {
    const names = Array.from({ length: 60 }, (_, i) => `Crash Brand ${i + 1}`);
    const csv = await writeBrandsCsv(dir, names);
    // The job lock (30 s), limiter lease (30 s), attempts and backoffs are the shipped ones:
    // the takeover below is the one a production fleet gets. The provider limits are the
    // account's, not brandq's reliability settings: at the shipped 60 requests and 30,000
    // tokens a minute 60 brands would take minutes, so these are the fakes' own (open) limits.
    const env = shippedWorkerEnv(fakes, redis.url, OPEN_LIMITS);
    await enqueue(['--csv', csv, '--run', 'crash-run'], env);
    const [victim, survivor] = startWorkers(2, env, CONCURRENCY);
    workers.push(victim!, survivor!);

    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    await waitForRun(runs, 'crash-run', (r) => r.succeeded >= 10, 60_000);
    // Killed while it has a provider call in flight: the case that can pay twice.
    const inFlightFrom = (k: Kill) => [...fakes.openai.ledger, ...fakes.tavily.ledger].some((e) => e.completedAt === null && e.clientPort !== undefined && k.ports?.has(e.clientPort) === true);
    const kill = await freezeAndKill(victim!, { when: inFlightFrom });
    expect(victim!.child.signalCode).toBe('SIGKILL');

    await enqueue(['--resume', '--csv', csv], env);
    workers.push(...startWorkers(1, env, CONCURRENCY));
    // The victim's jobs come back when their lock lapses and a stalled check finds them:
    // JOB_LOCK_SECONDS (30) after its last renewal, within one more check interval.
    const run = await waitForRun(runs, 'crash-run', (r) => r.status === 'completed', 120_000);
    const completedAfterKillMs = Date.now() - kill.at;
    expect(run).toMatchObject({ total: 60, succeeded: 60, failed: 0 });

    const out = join(dir, 'crash.jsonl');
    expect(await waitForExit(spawnTs('apps/producer/src/export.ts', ['--run', 'crash-run', '--out', out], env), 30_000)).toBe(0);
    const rows = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { brand: string; status: string });
    expect(rows.map((r) => r.brand).sort()).toEqual([...names].sort());
    expect(rows.every((r) => r.status === 'success')).toBe(true);

    // Duplicates, from the providers' own ledgers. A job has at most one call of a provider
    // outstanding and a retry resumes from its checkpoint, so each of the victim's
    // CONCURRENCY jobs can pay again for at most one call per provider: the one it had in
    // flight (or answered but not yet recorded) when it died.
    const money = await new CostLedger(client).snapshot('crash-run');
    let callsInFlightAtKill = 0;
    process.stdout.write(`crash and resume: completed ${(completedAfterKillMs / 1000).toFixed(1)} s after the SIGKILL\n`);
    for (const [name, ledger, booked] of [
      ['llm', fakes.openai.ledger, money.providers.llm],
      ['tavily', fakes.tavily.ledger, money.providers.tavily],
    ] as const) {
      const billed = ledger.filter((e) => e.billed);
      const inHand = callsOfKilledWorkers(billed, [kill]);
      callsInFlightAtKill += inHand.certain.length;
      const paid = paidCallsPerBrand(ledger, names);
      process.stdout.write(
        `  ${name}: ${billed.length} paid calls (${paid.histogram}); victim's calls in flight ${inHand.certain.length}, answered <2 s before the kill ${inHand.possible.length}; ` +
          `booked ${booked.calls} calls ${booked.costMicros} µ$ + ${booked.unconfirmedCalls} unconfirmed vs billed ${ledger.billedMicros()} µ$\n`,
      );
      expect(paid.unpaid, name).toEqual([]);
      expect(paid.unattributed, name).toBe(0);
      expect(inHand.certain.length, name).toBeLessThanOrEqual(CONCURRENCY);
      expect(paid.duplicates, name).toBeLessThanOrEqual(CONCURRENCY);
      expect(paid.duplicates, name).toBeLessThanOrEqual(inHand.certain.length + inHand.possible.length);
      // The ledger never books more than was billed; what it lacks is the victim's calls in hand.
      const gapMicros = ledger.billedMicros() - booked.costMicros;
      expect(gapMicros, name).toBeGreaterThanOrEqual(sum(inHand.certain));
      expect(gapMicros, name).toBeLessThanOrEqual(sum(inHand.certain) + sum(inHand.possible));
    }
    expect(callsInFlightAtKill, 'the kill caught a provider call in flight').toBeGreaterThan(0);
    // What was billed and not confirmed is still counted: unconfirmed, or held by a reservation
    // that has not expired yet (it expires into unconfirmed spend).
    expect(money.spentMicros + money.unconfirmedMicros + money.reservedMicros).toBeGreaterThanOrEqual(fakes.openai.ledger.billedMicros() + fakes.tavily.ledger.billedMicros());
    client.disconnect();
  });
});

function sum(entries: readonly LedgerEntry[]): number {
  return entries.reduce((s, e) => s + e.costMicros, 0);
}
