/**
 * Runs of the real system for `pnpm bench`: the producer CLI and worker processes
 * (bench/system-worker.ts = apps/worker/src/main.ts) against fakes, and the raw BullMQ
 * baseline (bench/raw-worker.ts) on the same Redis.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { commandsProcessed, usedMemory } from './redis-info.js';
import { readCommandLine } from './command-counter.js';
import { waitReady } from './start-line.js';
import { createBrandQueue, createLimiter, QUEUE_PREFIX, RunStore, spawnTs, waitForExit, type LimiterStats, type SpawnedProcess } from './workspace.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function brandNames(count: number, prefix: string): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${String(i + 1).padStart(6, '0')}`);
}

/** Resident set size of a process in bytes (Linux), 0 when unknown. */
function rssOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process used so far (Linux), NaN when unknown. */
export function cpuSecondsOf(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the full line (12 and 13 after the command name), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of the parent (where the fakes run), the worker processes and redis-server between two points. */
export interface CpuSplit {
  fakesAndBench: number;
  workers: number;
  redis: number;
}

async function redisPid(admin: Redis): Promise<number> {
  return Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1] ?? 0);
}

function cpuNow(workerPids: (number | undefined)[], redis: number): CpuSplit {
  const self = process.cpuUsage();
  return {
    fakesAndBench: (self.user + self.system) / 1e6,
    workers: workerPids.reduce<number>((sum, pid) => sum + cpuSecondsOf(pid), 0),
    redis: cpuSecondsOf(redis),
  };
}

function cpuDelta(a: CpuSplit, b: CpuSplit): CpuSplit {
  return { fakesAndBench: b.fakesAndBench - a.fakesAndBench, workers: b.workers - a.workers, redis: b.redis - a.redis };
}

/** Samples the RSS of processes every `everyMs`; `stop()` returns the peak of each. */
function sampleRss(procs: readonly SpawnedProcess[], everyMs = 500): { stop(): number[] } {
  const peaks = procs.map(() => 0);
  const sample = () => procs.forEach((p, i) => (peaks[i] = Math.max(peaks[i] ?? 0, rssOf(p.child.pid))));
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}

async function waitForWorkers(queue: Queue, count: number, procs: readonly SpawnedProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await queue.getWorkers()).length < count) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`a worker exited before it was ready:\n${dead.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`workers not ready within ${timeoutMs} ms:\n${procs.map((p) => p.output().slice(-500)).join('\n---\n')}`);
    await sleep(100);
  }
}

/** Stops the processes; returns the Redis commands they sent, in total and by name. */
async function stopAll(procs: readonly SpawnedProcess[]): Promise<{ count: number; byName: Record<string, number> }> {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => waitForExit(p, 60_000).catch(() => p.kill('SIGKILL'))));
  const byName: Record<string, number> = {};
  let count = 0;
  for (const p of procs) {
    const sent = readCommandLine(p.output());
    count += sent.count;
    for (const [name, n] of Object.entries(sent.byName)) byName[name] = (byName[name] ?? 0) + n;
  }
  return { count, byName };
}

/** Commands per item by name, largest first, from process start to stop (startup included). */
function perItem(byName: Record<string, number>, items: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(byName)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => [name, Math.round((n / items) * 100) / 100]),
  );
}

/**
 * Throughput without ramp-up and tail: completions after max(the 10th percentile
 * completion, `from`) up to the 90th percentile one, over that span.
 */
function steadyRate(doneAt: number[], from = 0): number {
  const sorted = [...doneAt].sort((a, b) => a - b);
  if (sorted.length < 10) return Number.NaN;
  const hi = Math.ceil(sorted.length * 0.9) - 1;
  let lo = Math.floor(sorted.length * 0.1);
  while (lo < hi && (sorted[lo] ?? 0) < from) lo++;
  const span = ((sorted[hi] ?? 0) - (sorted[lo] ?? 0)) / 1000;
  return span > 0 && hi - lo >= 5 ? (hi - lo) / span : Number.NaN;
}

export interface PipelineRunOptions {
  label: string;
  brands: number;
  workers: number;
  concurrency: number;
  env: Record<string, string>;
  timeoutMs: number;
  /** Start the workers in the per-process (original) limiter design. */
  localLimiter?: boolean;
  /** Boot the workers while the producer enqueues (saves time; leaves the enqueue timing disturbed). */
  overlapStartup?: boolean;
  /** Leave completions in the first `steadyAfterMs` after the release out of the steady rate (a first window's free burst). */
  steadyAfterMs?: number;
}

export interface PipelineRun {
  label: string;
  brands: number;
  workers: number;
  concurrency: number;
  status: string;
  succeeded: number;
  failed: number;
  /** Wall time of `pnpm enqueue --csv ... --no-follow` (process start included). */
  enqueueSeconds: number;
  /** From releasing the paused queue to the run's last outcome. */
  seconds: number;
  brandsPerSecond: number;
  steadyBrandsPerSecond: number;
  serverCommandsPerBrand: number;
  clientCommandsPerBrand: number;
  /** Commands the workers sent per brand, by name (worker start and stop included). */
  clientCommandsByName: Record<string, number>;
  redisBytesBefore: number;
  redisBytesQueued: number;
  redisBytesAfter: number;
  /** RSS of each worker once registered and idle, and its peak during the run. */
  workerReadyRssBytes: number[];
  workerPeakRssBytes: number[];
  /** The shared limiter's statistics after the run (all zero in the per-process design). */
  limiterStats: Record<'llm' | 'tavily', LimiterStats>;
  /** CPU seconds per brand spent in the fakes (this process), the workers and Redis while the run was processed. */
  cpuMsPerBrand: CpuSplit;
  timedOut: boolean;
}

/**
 * One run of the real system: the producer CLI enqueues a CSV of `brands` unique names
 * into the paused queue; once every worker process is registered, the queue is resumed
 * and the clock runs until the run has an outcome for every brand.
 */
export async function runPipeline(admin: Redis, o: PipelineRunOptions): Promise<PipelineRun> {
  await admin.flushall();
  const dir = await mkdtemp(join(tmpdir(), 'brandq-bench-'));
  const queue = createBrandQueue(admin);
  const runs = new RunStore(admin);
  const runId = `bench-${o.label}`;
  let workers: SpawnedProcess[] = [];
  try {
    await queue.pause();
    const csv = join(dir, 'brands.csv');
    await writeFile(csv, `brand\n${brandNames(o.brands, `Bench ${o.label}`).join('\n')}\n`);
    const redisBytesBefore = await usedMemory(admin);
    const env = { ...o.env, ...(o.localLimiter ? { BENCH_LOCAL_LIMITER: '1' } : {}) };
    const startWorkers = () => Array.from({ length: o.workers }, () => spawnTs('bench/system-worker.ts', ['--concurrency', String(o.concurrency)], env));
    if (o.overlapStartup) workers = startWorkers();
    const enqueueStarted = performance.now();
    const producer = spawnTs('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', runId, '--no-follow'], o.env);
    const code = await waitForExit(producer, 30 * 60_000);
    if (code !== 0) throw new Error(`enqueue exited ${code}:\n${producer.output().slice(-2000)}`);
    const enqueueSeconds = (performance.now() - enqueueStarted) / 1000;
    const redisBytesQueued = await usedMemory(admin);
    if (!(await runs.getRun(runId))) throw new Error(`enqueue created no run ${runId}:\n${producer.output().slice(-2000)}`);

    if (!o.overlapStartup) workers = startWorkers();
    const rss = sampleRss(workers);
    await waitForWorkers(queue, o.workers, workers, 120_000);
    const workerReadyRssBytes = workers.map((w) => rssOf(w.child.pid));
    const redis = await redisPid(admin);
    const workerPids = workers.map((w) => w.child.pid);
    const cpuBefore = cpuNow(workerPids, redis);
    const commandsBefore = await commandsProcessed(admin);
    const started = performance.now();
    const releasedAt = Date.now();
    await queue.resume();
    let run = await runs.getRun(runId);
    let timedOut = false;
    while (run && run.status === 'running' && run.succeeded + run.failed < run.total) {
      if (performance.now() - started > o.timeoutMs) {
        timedOut = true;
        break;
      }
      await sleep(100);
      run = await runs.getRun(runId);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuDelta(cpuBefore, cpuNow(workerPids, redis));
    const serverCommands = (await commandsProcessed(admin)) - commandsBefore;
    const redisBytesAfter = await usedMemory(admin);
    const limiter = createLimiter({ redis: admin, providers: { llm: { rpm: 1, burst: 1 }, tavily: { rpm: 1, burst: 1 } } });
    const limiterStats = { llm: await limiter.stats('llm'), tavily: await limiter.stats('tavily') };
    const clientCommands = await stopAll(workers);
    const workerPeakRssBytes = rss.stop();
    const doneAt: number[] = [];
    for await (const r of runs.results(runId)) doneAt.push(Date.parse(r.processedAt));
    const succeeded = run?.succeeded ?? 0;
    return {
      label: o.label,
      brands: o.brands,
      workers: o.workers,
      concurrency: o.concurrency,
      status: run?.status ?? 'missing',
      succeeded,
      failed: run?.failed ?? 0,
      enqueueSeconds,
      seconds,
      brandsPerSecond: succeeded / seconds,
      steadyBrandsPerSecond: steadyRate(doneAt, releasedAt + (o.steadyAfterMs ?? 0)),
      serverCommandsPerBrand: serverCommands / o.brands,
      clientCommandsPerBrand: clientCommands.count / o.brands,
      clientCommandsByName: perItem(clientCommands.byName, o.brands),
      redisBytesBefore,
      redisBytesQueued,
      redisBytesAfter,
      workerReadyRssBytes,
      workerPeakRssBytes,
      limiterStats,
      cpuMsPerBrand: { fakesAndBench: (cpu.fakesAndBench * 1000) / o.brands, workers: (cpu.workers * 1000) / o.brands, redis: (cpu.redis * 1000) / o.brands },
      timedOut,
    };
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.kill('SIGKILL');
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Only the enqueue: time and Redis memory per queued brand (the queue stays paused). */
export async function runEnqueueOnly(admin: Redis, label: string, brands: number, env: Record<string, string>): Promise<{ seconds: number; bytesPerBrand: number; redisBytesQueued: number }> {
  await admin.flushall();
  const dir = await mkdtemp(join(tmpdir(), 'brandq-bench-'));
  const queue = createBrandQueue(admin);
  try {
    await queue.pause();
    const csv = join(dir, 'brands.csv');
    await writeFile(csv, `brand\n${brandNames(brands, `Bench ${label}`).join('\n')}\n`);
    const before = await usedMemory(admin);
    const started = performance.now();
    const producer = spawnTs('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', `bench-${label}`, '--no-follow'], env);
    const code = await waitForExit(producer, 30 * 60_000);
    if (code !== 0) throw new Error(`enqueue exited ${code}:\n${producer.output().slice(-2000)}`);
    const seconds = (performance.now() - started) / 1000;
    const queued = await usedMemory(admin);
    return { seconds, bytesPerBrand: (queued - before) / brands, redisBytesQueued: queued };
  } finally {
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export interface RawRun {
  mode: 'noop' | 'calls';
  jobs: number;
  failed: number;
  workers: number;
  concurrency: number;
  seconds: number;
  jobsPerSecond: number;
  serverCommandsPerJob: number;
  clientCommandsPerJob: number;
  clientCommandsByName: Record<string, number>;
  cpuMsPerJob: CpuSplit;
}

/**
 * The raw engine: the same number of worker processes and concurrency, BullMQ jobs with
 * the brand jobs' payload shape and retention options that do nothing (`noop`) or make a
 * brand's two provider calls without brandq's machinery around them (`calls`).
 */
export async function runRaw(
  admin: Redis,
  mode: 'noop' | 'calls',
  jobs: number,
  workerCount: number,
  concurrency: number,
  env: Record<string, string>,
): Promise<RawRun> {
  await admin.flushall();
  const name = 'bench-raw';
  const queue = new Queue(name, { connection: admin, prefix: QUEUE_PREFIX });
  let workers: SpawnedProcess[] = [];
  try {
    await queue.pause();
    const opts = { attempts: 4, removeOnComplete: { count: 1000 }, removeOnFail: { count: 10_000 } };
    for (let i = 0; i < jobs; i += 500) {
      const chunk = Array.from({ length: Math.min(500, jobs - i) }, (_, j) => {
        const n = i + j + 1;
        const data = { runId: 'bench-raw', key: `raw brand ${n}`, name: `Bench Raw ${String(n).padStart(6, '0')}`, rowNumber: n + 1, hints: {}, source: { type: 'csv', path: '/tmp/brands.csv' } };
        return { name: 'brand', data, opts: { ...opts, jobId: `raw-${n}` } };
      });
      await queue.addBulk(chunk);
    }
    workers = Array.from({ length: workerCount }, () => spawnTs('bench/raw-worker.ts', [], { ...env, RAW_QUEUE: name, RAW_MODE: mode, CONCURRENCY: String(concurrency) }));
    await waitReady(workers, 120_000);
    await waitForWorkers(queue, workerCount, workers, 60_000);
    const redis = await redisPid(admin);
    const workerPids = workers.map((w) => w.child.pid);
    const cpuBefore = cpuNow(workerPids, redis);
    const before = await commandsProcessed(admin);
    const started = performance.now();
    await queue.resume();
    for (;;) {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(counts).every((c) => c === 0)) break;
      await sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuDelta(cpuBefore, cpuNow(workerPids, redis));
    const serverCommands = (await commandsProcessed(admin)) - before;
    const failed = (await queue.getJobCounts('failed')).failed ?? 0;
    const clientCommands = await stopAll(workers);
    return {
      mode,
      jobs,
      failed,
      workers: workerCount,
      concurrency,
      seconds,
      jobsPerSecond: jobs / seconds,
      serverCommandsPerJob: serverCommands / jobs,
      clientCommandsPerJob: clientCommands.count / jobs,
      clientCommandsByName: perItem(clientCommands.byName, jobs),
      cpuMsPerJob: { fakesAndBench: (cpu.fakesAndBench * 1000) / jobs, workers: (cpu.workers * 1000) / jobs, redis: (cpu.redis * 1000) / jobs },
    };
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.kill('SIGKILL');
    await queue.close();
  }
}

const BULL_KEYS = new Set(['wait', 'paused', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'events', 'meta', 'id', 'stalled', 'stalled-check', 'marker', 'pc', 'limiter', 'metrics', 'repeat', 'waiting-children', 'de']);

/** The family of a key: `run:results`, `cache:llm:value`, `bullmq:job`, `bullmq:completed`, `limiter`... */
function familyOf(key: string): string {
  let m = /^\{brandq\}:[^:]+:(.+)$/.exec(key);
  if (m?.[1]) {
    const parts = m[1].split(':');
    if (parts.length === 1 && BULL_KEYS.has(parts[0] ?? '')) return `bullmq:${parts[0]}`;
    return parts.length > 1 && BULL_KEYS.has(parts[parts.length - 1] ?? '') === false ? `bullmq:job:${parts[parts.length - 1]}` : 'bullmq:job';
  }
  m = /^brandq:\{run:[^}]+\}:(.+)$/.exec(key);
  if (m) return `run:${m[1]}`;
  m = /^brandq:cache:\{([^:}]+):[^}]*\}:(.+)$/.exec(key);
  if (m) return `cache:${m[1]}:${m[2]}`;
  if (key.startsWith('brandq:{limiter:')) return 'limiter';
  return key;
}

/** Redis memory by key family, largest first. */
export async function memoryByFamily(admin: Redis): Promise<{ family: string; keys: number; bytes: number }[]> {
  const families = new Map<string, { keys: number; bytes: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'COUNT', 1000);
    cursor = next;
    if (keys.length === 0) continue;
    const pipeline = admin.pipeline();
    for (const k of keys) pipeline.memory('USAGE', k, 'SAMPLES', '0');
    const sizes = (await pipeline.exec()) ?? [];
    keys.forEach((k, i) => {
      const family = familyOf(k);
      const entry = families.get(family) ?? { keys: 0, bytes: 0 };
      entry.keys += 1;
      entry.bytes += Number(sizes[i]?.[1] ?? 0);
      families.set(family, entry);
    });
  } while (cursor !== '0');
  return [...families].map(([family, v]) => ({ family, ...v })).sort((a, b) => b.bytes - a.bytes);
}
