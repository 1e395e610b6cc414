/**
 * The real system for `pnpm bench:fairness`: worker processes (bench/system-worker.ts =
 * apps/worker/src/main.ts as shipped) on one queue, and runs created the way the CLI and
 * the board create them (the run service's `createRun`, with a weight), in this process.
 * The run service is imported from its sources, like the packages in workspace.ts.
 */
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../packages/config/src/index.js';
import { defaultRecipe } from '../../packages/recipe/src/index.js';
import { createRun } from '../../packages/run-service/src/index.js';
import { info } from './redis-info.js';
import { sleep } from './pipeline-runs.js';
import type { BrandQueue } from '../../packages/queue/src/index.js';
import { limiterKeys } from '../../packages/redis/src/index.js';
import { spawnTs, waitForExit, type RunStore, type SpawnedProcess } from './workspace.js';

export interface Fleet {
  procs: SpawnedProcess[];
  /** SIGTERM (the worker's graceful shutdown), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `workers` worker processes of `concurrency` jobs each and waits until every one is registered on the queue. */
export async function startFleet(queue: BrandQueue, workers: number, concurrency: number, env: Record<string, string>, timeoutMs = 120_000): Promise<Fleet> {
  const procs = Array.from({ length: workers }, () => spawnTs('bench/system-worker.ts', ['--concurrency', String(concurrency)], env));
  const stop = async (graceMs = 30_000) => {
    for (const p of procs) if (p.child.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => waitForExit(p, graceMs).catch(() => p.kill('SIGKILL'))));
  };
  const deadline = Date.now() + timeoutMs;
  try {
    while ((await queue.getWorkers()).length < workers) {
      const dead = procs.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`a worker exited before it was ready:\n${dead.output().slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`workers not ready within ${timeoutMs} ms:\n${procs.map((p) => p.output().slice(-500)).join('\n---\n')}`);
      await sleep(100);
    }
  } catch (err) {
    await stop(5_000);
    throw err;
  }
  return { procs, stop };
}

/** The configuration the bench's runs are created with: the workers' environment, nothing from a .env file. */
export function benchConfig(env: Record<string, string>): Config {
  return loadConfig(env);
}

export interface CreatedRun {
  id: string;
  brands: number;
  /** Epoch ms when `createRun` was called, and how long it took (estimate and enqueue). */
  calledAt: number;
  seconds: number;
}

/** Creates run `id` of `brands` brands named `<label> 000001`... at `weight`, through the run service (no budget, default recipe). */
export async function createWeightedRun(redis: Redis, queue: BrandQueue, config: Config, o: { id: string; label: string; brands: number; weight: number }): Promise<CreatedRun> {
  const names = Array.from({ length: o.brands }, (_, i) => `${o.label} ${String(i + 1).padStart(6, '0')}`);
  const calledAt = Date.now();
  const started = performance.now();
  const outcome = await createRun(
    { redis, queue, config },
    {
      source: { csvText: `brand\n${names.join('\n')}\n` },
      runId: o.id,
      budgetMicros: 0,
      recipe: defaultRecipe(),
      noCache: false,
      force: false,
      allowPartial: false,
      refuseDuringCooldown: false,
      share: { weight: o.weight },
    },
  );
  if (outcome.kind !== 'created' || outcome.enqueued !== o.brands) throw new Error(`run ${o.id} was not created with ${o.brands} brands: ${JSON.stringify(outcome).slice(0, 500)}`);
  return { id: o.id, brands: o.brands, calledAt, seconds: (performance.now() - started) / 1000 };
}

/** Brands of each run with an outcome (succeeded or failed), and the run's total. */
export async function progressOf(runs: RunStore, ids: readonly string[]): Promise<Map<string, { done: number; total: number }>> {
  const progress = new Map<string, { done: number; total: number }>();
  for (const id of ids) {
    const run = await runs.getRun(id);
    progress.set(id, { done: (run?.succeeded ?? 0) + (run?.failed ?? 0), total: run?.total ?? 0 });
  }
  return progress;
}

/** Waits until run `id` has an outcome for every brand; the epoch ms of its last outcome (from the results' `processedAt`). */
export async function waitForRun(runs: RunStore, id: string, timeoutMs: number): Promise<{ lastOutcomeAt: number; failed: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.getRun(id);
    if (run && run.succeeded + run.failed >= run.total) {
      let last = 0;
      for await (const r of runs.results(id)) last = Math.max(last, Date.parse(r.processedAt));
      for await (const f of runs.failures(id)) last = Math.max(last, Date.parse(f.failedAt));
      return { lastOutcomeAt: last, failed: run.failed };
    }
    if (Date.now() > deadline) throw new Error(`run ${id} not finished within ${timeoutMs} ms (${run?.succeeded ?? 0} ok, ${run?.failed ?? 0} failed of ${run?.total ?? '?'})`);
    await sleep(50);
  }
}

/** Server-side command counts: the total (commands inside Lua scripts included) and calls by command name (INFO commandstats). */
export interface CommandSnapshot {
  total: number;
  byName: Map<string, number>;
}

export async function commandSnapshot(redis: Redis): Promise<CommandSnapshot> {
  const [stats, commandstats] = [await info(redis, 'stats'), await info(redis, 'commandstats')];
  const byName = new Map<string, number>();
  for (const [field, value] of commandstats) {
    const calls = /(?:^|,)calls=(\d+)/.exec(value);
    if (field.startsWith('cmdstat_') && calls?.[1]) byName.set(field.slice('cmdstat_'.length), Number(calls[1]));
  }
  return { total: Number(stats.get('total_commands_processed') ?? Number.NaN), byName };
}

/** Commands executed between two snapshots, per `items`, by name (largest first). */
export function commandsPer(before: CommandSnapshot, after: CommandSnapshot, items: number): { total: number; byName: Record<string, number> } {
  const byName: [string, number][] = [];
  for (const [name, calls] of after.byName) {
    const delta = calls - (before.byName.get(name) ?? 0);
    if (delta > 0) byName.push([name, delta / items]);
  }
  byName.sort((a, b) => b[1] - a[1]);
  return { total: (after.total - before.total) / items, byName: Object.fromEntries(byName) };
}

/** A hold header sync put on a provider's limiter: epoch ms when the watcher saw it, the server ms it lasts until, and how long it still had then. */
export interface Hold {
  seenAt: number;
  untilMs: number;
  leftMs: number;
}

/**
 * Watches a provider's shared limiter once a second for a hold set by header sync (a
 * provider answer reported fewer requests left than the limiter's own log allows: nothing
 * is admitted until the provider's reset). Reads the one field of the limiter's bucket and
 * the server clock, two commands a second, so the Redis commands measured stay the fleet's.
 * `stop()` returns each hold seen, once.
 */
export function watchHolds(redis: Redis, provider: 'llm' | 'tavily', everyMs = 1000): { stop(): Promise<Hold[]> } {
  const bucket = limiterKeys(provider).bucket;
  const holds: Hold[] = [];
  let pending: Promise<void> = Promise.resolve();
  const look = async () => {
    const [until, [seconds, micros]] = await Promise.all([redis.hget(bucket, 'holdUntil'), redis.time()]);
    const untilMs = Number(until ?? 0);
    const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    if (untilMs > nowMs && holds[holds.length - 1]?.untilMs !== untilMs) holds.push({ seenAt: Date.now(), untilMs, leftMs: untilMs - nowMs });
  };
  const timer = setInterval(() => {
    pending = look().catch(() => undefined);
  }, everyMs);
  let stopped: Promise<Hold[]> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await pending;
        return holds;
      })();
      return stopped;
    },
  };
}
