import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFakes, type Fakes, type FakesOptions, type Ledger, type LedgerEntry } from '@brandq/fakes';
import type { RunMeta, RunStore } from '@brandq/runs';
import { spawnTs, tcpConnectionsOf, waitForExit, type SpawnedProcess } from '@brandq/testing';

/**
 * Limits out of the way, for tests about something other than the limiter. OpenAI's stay at
 * the fake's own defaults (10,000 requests, 10M tokens a minute): the limiter tightens its
 * state from the provider's rate-limit headers, so configuring more than the provider
 * grants would only hold workers until the provider's reset. The fake Tavily grants 1,000
 * requests a minute (paced per second) and sends no such headers: a test that configures
 * these limits starts it with `OPEN_TAVILY`, or its bursts draw 429s.
 */
export const OPEN_LIMITS = {
  OPENAI_RPM_LIMIT: '10000',
  OPENAI_RPM_BURST: '1000',
  OPENAI_TPM_LIMIT: '10000000',
  OPENAI_MAX_CONCURRENCY: '64',
  TAVILY_RPM_LIMIT: '100000',
  TAVILY_RPM_BURST: '1000',
  TAVILY_MAX_CONCURRENCY: '64',
  SHEETS_RPM_LIMIT: '6000',
  SHEETS_RPM_BURST: '100',
};

/** Fake Tavily options granting what OPEN_LIMITS configures. */
export const OPEN_TAVILY = { rpm: Number(OPEN_LIMITS.TAVILY_RPM_LIMIT) };

/**
 * The fakes granting what OPEN_LIMITS configures, for tests about something other than the
 * limiter: a fleet configured above what its providers grant draws 429s that are not the point.
 */
export function startOpenFakes(opts: FakesOptions = {}): Promise<Fakes> {
  return startFakes({ ...opts, tavily: { ...OPEN_TAVILY, ...opts.tavily }, sheets: { rpm: Number(OPEN_LIMITS.SHEETS_RPM_LIMIT), ...opts.sheets } });
}

/**
 * A worker for tests about something other than faults: open limits, and a 3 s job lock so
 * a test that kills a worker sees its jobs taken over in seconds. The fault suites (chaos,
 * Redis outage, crash and resume) use `shippedWorkerEnv` instead.
 */
export function workerEnv(fakes: Fakes, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...fakes.env, REDIS_URL: redisUrl, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', JOB_LOCK_SECONDS: '3', ...OPEN_LIMITS, ...extra };
}

/**
 * A worker at the shipped defaults (packages/config/src/schema.ts, .env.example): only the
 * fakes' addresses and keys, Redis and the log format. Every value a fault suite still sets
 * goes in `changed`, with a comment at the call site saying why; the retries, backoffs,
 * job lock and limiter lease a fault meets in production are the ones it meets here.
 */
export function shippedWorkerEnv(fakes: Fakes, redisUrl: string, changed: Record<string, string> = {}): Record<string, string> {
  return { ...fakes.env, REDIS_URL: redisUrl, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...changed };
}

/**
 * Redis as docker-compose.yml runs it: AOF with an fsync before every reply, and writes
 * refused rather than keys evicted when memory is full. redis-outage.test.ts checks the
 * compose file says the same.
 */
export const COMPOSE_REDIS_ARGS = ['--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'] as const;

export async function writeBrandsCsv(dir: string, names: readonly string[], file = 'brands.csv'): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, `brand\n${names.map((n) => (/[",]/.test(n) ? `"${n.replace(/"/g, '""')}"` : n)).join('\n')}\n`);
  return path;
}

export async function enqueue(args: string[], env: Record<string, string>): Promise<SpawnedProcess> {
  const proc = spawnTs('apps/producer/src/enqueue.ts', [...args, '--no-follow'], env);
  const code = await waitForExit(proc, 60_000);
  if (code !== 0) throw new Error(`enqueue ${args.join(' ')} exited ${code}:\n${proc.output()}`);
  return proc;
}

/** Polls the run until `done(run)` holds (the run's state in Redis is the condition, not time). */
export async function waitForRun(runs: RunStore, runId: string, done: (run: RunMeta) => boolean, timeoutMs: number): Promise<RunMeta> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.getRun(runId);
    if (run && done(run)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function startWorkers(n: number, env: Record<string, string>, concurrency = 8): SpawnedProcess[] {
  return Array.from({ length: n }, () => spawnTs('apps/worker/src/main.ts', ['--concurrency', String(concurrency)], env));
}

export async function stopWorkers(workers: SpawnedProcess[]): Promise<void> {
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => waitForExit(w, 30_000).catch(() => w.kill('SIGKILL'))));
}

/** Polls `check` until it returns a value other than undefined/false (a condition, not a sleep). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs a producer CLI (`apps/producer/src/<name>.ts`) to completion and returns what it printed. */
export async function producerCli(name: string, args: string[], env: Record<string, string>): Promise<string> {
  const proc = spawnTs(`apps/producer/src/${name}.ts`, args, env);
  const code = await waitForExit(proc, 60_000);
  if (code !== 0) throw new Error(`${name} ${args.join(' ')} exited ${code}:\n${proc.output()}`);
  return proc.output();
}

/**
 * Waits until `n` worker processes are connected to the brand queue: past their start-up
 * (module loading is the heaviest CPU load they make), so a test's clock starts on a fleet
 * that is ready rather than on processes still competing for the CPU to boot.
 */
export async function waitForWorkersReady(queue: { getWorkersCount(): Promise<number> }, n: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(`${n} workers connected`, async () => (await queue.getWorkersCount()) >= n, timeoutMs, 200);
}

/** A worker killed by a fault suite. */
export interface Kill {
  pid: number;
  /** When the victim was frozen (SIGSTOP): it handled nothing after this. */
  at: number;
  /** Its TCP connections at that moment (local ports), to attribute the fakes' requests; undefined where /proc cannot tell. */
  ports: Set<number> | undefined;
}

/**
 * kill -9 with a witness: SIGSTOP first, so the worker handles nothing more while its TCP
 * connections are read, then SIGKILL. The ports tell which of the fakes' requests were its.
 * With `when`, the worker is frozen and let go again until `when` holds for what it holds
 * (or `timeoutMs` passes), then killed in that state.
 */
export async function freezeAndKill(victim: SpawnedProcess, opts: { when?: (frozen: Kill) => boolean; timeoutMs?: number } = {}): Promise<Kill> {
  const pid = victim.child.pid as number;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let frozen: Kill;
  for (;;) {
    victim.kill('SIGSTOP');
    const at = Date.now();
    const connections = await tcpConnectionsOf(pid);
    frozen = { pid, at, ports: connections ? new Set(connections.map((c) => c.localPort)) : undefined };
    // `when` picks the moment (e.g. a call in flight); not yet: let it run a little and look again.
    if (!opts.when || opts.when(frozen) || Date.now() > deadline) break;
    victim.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 50));
  }
  victim.kill('SIGKILL');
  await waitForExit(victim, 10_000);
  return frozen;
}

/** A killed worker may have received an answer this long before it was frozen without having recorded it yet. */
export const BOOKING_WINDOW_MS = 2000;

/**
 * Billed requests a killed worker had in hand: sent before it froze and answered after
 * (`certain`: it can have booked and recorded none of them), or answered less than
 * `BOOKING_WINDOW_MS` before (`possible`: it may not have). These are the only calls a
 * takeover can pay for a second time, and the only billed calls the ledger may lack.
 */
export function callsOfKilledWorkers(billed: readonly LedgerEntry[], kills: readonly Kill[]): { certain: LedgerEntry[]; possible: LedgerEntry[] } {
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

/**
 * Duplicates as the provider saw them, from its own ledger: paid calls beyond the first
 * per brand, brands of `expected` it was never paid for, and paid calls it could not tie
 * to any brand (which would hide a duplicate, so tests expect none).
 */
export function paidCallsPerBrand(ledger: Ledger, expected: readonly string[]): { duplicates: number; unpaid: string[]; unattributed: number; histogram: string } {
  const perBrand = ledger.paidCallsByBrand();
  let duplicates = 0;
  let attributed = 0;
  for (const n of perBrand.values()) {
    duplicates += n - 1;
    attributed += n;
  }
  const counts = new Map<number, number>();
  for (const n of perBrand.values()) counts.set(n, (counts.get(n) ?? 0) + 1);
  const histogram = [...counts].sort((a, b) => a[0] - b[0]).map(([n, c]) => `${n} call${n === 1 ? '' : 's'}: ${c} brands`).join(', ');
  return { duplicates, unpaid: expected.filter((b) => !perBrand.has(b)), unattributed: ledger.summary().paidCalls - attributed, histogram };
}
