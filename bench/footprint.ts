/**
 * `pnpm bench:footprint`: what one worker process costs in memory and start time (issue 14),
 * the development way and the built way side by side in the same run.
 *
 * Needs `pnpm build` first: the built variants run apps/worker/dist/main.js, and this script
 * builds nothing (it stops with a message when the build is missing).
 *
 * Starts a throwaway redis-server and the fakes (latency below, limits out of the way), then
 * for each round and each variant, in turn (the order rotates every round):
 *
 *   1. enqueue FOOTPRINT_BRANDS new brands with the producer CLI into the paused queue;
 *   2. spawn one worker with `--concurrency 16` at the shipped defaults plus open limits;
 *   3. ready: the worker is registered on the queue (it polls for jobs);
 *   4. idle RSS: VmRSS 1.5 s after ready, no job taken yet;
 *   5. release the queue; peak RSS: the largest VmRSS sampled every 100 ms until every brand
 *      has an outcome, and VmHWM (the kernel's high-water mark over the process's whole life);
 *   6. SIGTERM, and SIGKILL to whatever is left of what it started.
 *
 * Start to first job = start to ready + release to the first brand done: what a worker
 * started on a waiting queue takes, without the idle pause of step 4.
 *
 * Variants (FOOTPRINT_VARIANTS, comma separated; default tsx,built,built-semi2):
 *   tsx            the tsx CLI on the sources, as `pnpm worker` runs it; the worker is the
 *                  child tsx spawns, and the tsx process itself is reported apart
 *   built          node apps/worker/dist/main.js, as the image runs it
 *   built-semi1|2|4  the same with `--max-semi-space-size=N` (MB: a smaller V8 young generation)
 *   built-optsize  the same with `--optimize-for-size`
 *   built-trim     the same with glibc returning freed memory sooner (MALLOC_TRIM_THRESHOLD_)
 *   built-lean     --max-semi-space-size=2 and MALLOC_TRIM_THRESHOLD_ together
 *
 * Other env: FOOTPRINT_BRANDS (300), FOOTPRINT_ROUNDS (2), FOOTPRINT_CONCURRENCY (16).
 * Prints a Markdown table and writes bench/results/footprint-<date>.json.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { OPEN_LIMITS, startOpenFakes } from '../apps/worker/src/test-support.js';
import { brandNames, sleep } from './support/pipeline-runs.js';
import { redisVersion } from './support/redis-info.js';
import { fixed, machine, note, out, table, writeResult } from './support/report.js';
import { createBrandQueue, createRedis, RunStore, spawnTs, startRedisServer, waitForExit } from './support/workspace.js';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const BRANDS = num('FOOTPRINT_BRANDS', 300);
const ROUNDS = num('FOOTPRINT_ROUNDS', 2);
const CONCURRENCY = num('FOOTPRINT_CONCURRENCY', 16);
const VARIANT_NAMES = (process.env.FOOTPRINT_VARIANTS ?? 'tsx,built,built-semi2').split(',');

/** Provider latency: 16 calls in flight in the worker, and 300 brands done in seconds. */
const LLM_LATENCY = { min: 100, max: 300 };
const SEARCH_LATENCY = { min: 50, max: 150 };
/** The idle reading waits this long after the worker registered, for start-up garbage to be collected. */
const IDLE_SETTLE_MS = 1500;
const SAMPLE_EVERY_MS = 100;

const root = fileURLToPath(new URL('../', import.meta.url));
const BUILT_MAIN = 'apps/worker/dist/main.js';
const TSX_CLI = 'node_modules/tsx/dist/cli.mjs';
/** glibc hands freed memory at the top of its heap back to the OS past 128 KB, a fixed threshold (its default one grows with the largest block freed). */
const MALLOC_TRIM = { MALLOC_TRIM_THRESHOLD_: '131072' };

interface Variant {
  name: string;
  /** What the variant runs, as a reader would type it. */
  command: string;
  nodeArgs: string[];
  env: Record<string, string>;
  /** The worker is a child of the spawned process (the tsx CLI), not the process itself. */
  wrapped: boolean;
}

function variant(name: string): Variant {
  const built = (flags: string[], env: Record<string, string> = {}): Variant => ({
    name,
    command: [...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'node', ...flags, BUILT_MAIN].join(' '),
    nodeArgs: [...flags, BUILT_MAIN],
    env,
    wrapped: false,
  });
  switch (name) {
    case 'tsx':
      return { name, command: 'tsx --conditions=@brandq/source apps/worker/src/main.ts', nodeArgs: [TSX_CLI, '--conditions=@brandq/source', 'apps/worker/src/main.ts'], env: {}, wrapped: true };
    case 'built':
      return built([]);
    case 'built-semi1':
    case 'built-semi2':
    case 'built-semi4':
      return built([`--max-semi-space-size=${name.slice(-1)}`]);
    case 'built-optsize':
      return built(['--optimize-for-size']);
    case 'built-trim':
      return built([], MALLOC_TRIM);
    case 'built-lean':
      return built(['--max-semi-space-size=2'], MALLOC_TRIM);
    default:
      throw new Error(`unknown variant "${name}" (FOOTPRINT_VARIANTS): tsx, built, built-semi1, built-semi2, built-semi4, built-optsize, built-trim, built-lean`);
  }
}

// ---- /proc ------------------------------------------------------------------------

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Direct children of a process, from each process's parent in /proc/<pid>/stat. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // ended while listed
    }
  }
  return children;
}

// ---- one measurement --------------------------------------------------------------

interface Sample {
  variant: string;
  round: number;
  startToReadySeconds: number;
  startToFirstJobSeconds: number;
  idleRssBytes: number;
  /** Largest VmRSS sampled while the brands were processed. */
  peakRssBytes: number;
  /** VmHWM just before the stop: the peak over the whole life, start-up included. */
  hwmBytes: number;
  /** The tsx CLI process around the worker (tsx variant only): its VmRSS at the peak reading. */
  wrapperRssBytes: number;
  loadSeconds: number;
  brandsPerSecond: number;
  cpuMsPerBrand: number;
  succeeded: number;
  failed: number;
  exitCode: number | string;
}

async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs: number, proc: ChildProcess, output: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the worker exited while waiting for ${what}:\n${output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${output().slice(-3000)}`);
    await sleep(everyMs);
  }
}

async function measure(admin: Redis, v: Variant, round: number, env: Record<string, string>, dir: string): Promise<Sample> {
  await admin.flushall();
  const queue = createBrandQueue(admin);
  const runs = new RunStore(admin);
  const runId = `footprint-${v.name}-${round}`;
  let worker: ChildProcess | undefined;
  let workerPid = 0;
  try {
    await queue.pause();
    const csv = join(dir, `${runId}.csv`);
    await writeFile(csv, `brand\n${brandNames(BRANDS, `Footprint ${v.name} ${round}`).join('\n')}\n`);
    const producer = spawnTs('apps/producer/src/enqueue.ts', ['--csv', csv, '--run', runId, '--no-follow'], env);
    const code = await waitForExit(producer, 120_000);
    if (code !== 0) throw new Error(`enqueue exited ${code}:\n${producer.output().slice(-2000)}`);

    let text = '';
    const output = () => text;
    const spawnedAt = performance.now();
    worker = spawn(process.execPath, [...v.nodeArgs, '--concurrency', String(CONCURRENCY)], { cwd: root, env: { ...process.env, ...env, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (chunk: Buffer) => void (text = (text + chunk.toString()).slice(-200_000));
    worker.stdout?.on('data', append);
    worker.stderr?.on('data', append);
    const spawned = worker;
    const wrapperPid = spawned.pid ?? 0;
    await waitUntil('the worker to register on the queue', async () => ((await queue.getWorkersCount()) >= 1 ? true : undefined), 120_000, 50, spawned, output);
    const startToReadySeconds = (performance.now() - spawnedAt) / 1000;
    workerPid = v.wrapped ? (childrenOf(wrapperPid)[0] ?? 0) : wrapperPid;
    if (!workerPid) throw new Error(`no worker process under the tsx CLI (pid ${wrapperPid})`);
    await sleep(IDLE_SETTLE_MS);
    const idleRssBytes = statusField(workerPid, 'VmRSS');

    let peakRssBytes = idleRssBytes;
    let wrapperRssBytes = v.wrapped ? statusField(wrapperPid, 'VmRSS') : 0;
    const sampler = setInterval(() => {
      const rss = statusField(workerPid, 'VmRSS');
      if (rss > peakRssBytes) {
        peakRssBytes = rss;
        if (v.wrapped) wrapperRssBytes = statusField(wrapperPid, 'VmRSS');
      }
    }, SAMPLE_EVERY_MS);
    const cpuBefore = cpuSeconds(workerPid);
    const releasedAt = performance.now();
    await queue.resume();
    const outcomes = async () => {
      const run = await runs.getRun(runId);
      return run ? run.succeeded + run.failed : 0;
    };
    await waitUntil('the first brand done', async () => ((await outcomes()) >= 1 ? true : undefined), 120_000, 20, spawned, output);
    const releaseToFirstJobSeconds = (performance.now() - releasedAt) / 1000;
    await waitUntil(`${BRANDS} brands done`, async () => ((await outcomes()) >= BRANDS ? true : undefined), 300_000, 100, spawned, output);
    const loadSeconds = (performance.now() - releasedAt) / 1000;
    const cpu = cpuSeconds(workerPid) - cpuBefore;
    clearInterval(sampler);
    const hwmBytes = statusField(workerPid, 'VmHWM');
    const run = await runs.getRun(runId);

    spawned.kill('SIGTERM');
    const exitCode = await new Promise<number | string>((resolve) => {
      if (spawned.exitCode !== null || spawned.signalCode !== null) resolve(spawned.exitCode ?? spawned.signalCode ?? -1);
      else spawned.once('exit', (c, s) => resolve(c ?? s ?? -1));
    });
    return {
      variant: v.name,
      round,
      startToReadySeconds,
      startToFirstJobSeconds: startToReadySeconds + releaseToFirstJobSeconds,
      idleRssBytes,
      peakRssBytes,
      hwmBytes,
      wrapperRssBytes,
      loadSeconds,
      brandsPerSecond: BRANDS / loadSeconds,
      cpuMsPerBrand: (cpu * 1000) / BRANDS,
      succeeded: run?.succeeded ?? 0,
      failed: run?.failed ?? 0,
      exitCode,
    };
  } finally {
    // Whatever this measurement started and is still running (a failed wait, a stuck stop).
    for (const pid of [workerPid, worker?.pid ?? 0]) {
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await queue.close();
  }
}

// ---- report -----------------------------------------------------------------------

const MB = 1024 * 1024;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
/** Median, then every round in run order: "182 (179, 183, 185)". */
const cell = (samples: Sample[], pick: (s: Sample) => number, digits: number, scale = 1) => {
  const values = samples.map((s) => pick(s) / scale);
  return values.length > 1 ? `${fixed(median(values), digits)} (${values.map((x) => fixed(x, digits)).join(', ')})` : fixed(values[0] ?? Number.NaN, digits);
};

function printTable(variants: Variant[], samples: Sample[]): void {
  out(`### Worker footprint: one worker, --concurrency ${CONCURRENCY}, ${BRANDS} brands per round, ${ROUNDS} rounds (median, then each round)`);
  out();
  out(
    table(
      ['variant', 'start to ready s', 'start to first job s', 'RSS idle MB', 'RSS peak under load MB', 'VmHWM MB', 'brands/s', 'worker CPU ms/brand', 'failed'],
      variants.map((v) => {
        const of = samples.filter((s) => s.variant === v.name);
        return [
          `${v.name}: \`${v.command}\``,
          cell(of, (s) => s.startToReadySeconds, 2),
          cell(of, (s) => s.startToFirstJobSeconds, 2),
          cell(of, (s) => s.idleRssBytes, 0, MB),
          cell(of, (s) => s.peakRssBytes, 0, MB),
          cell(of, (s) => s.hwmBytes, 0, MB),
          cell(of, (s) => s.brandsPerSecond, 0),
          cell(of, (s) => s.cpuMsPerBrand, 1),
          String(of.reduce((n, s) => n + s.failed, 0)),
        ];
      }),
    ),
  );
  out();
  const wrapped = samples.filter((s) => s.wrapperRssBytes > 0);
  if (wrapped.length > 0) out(`The tsx CLI process around the tsx worker adds ${cell(wrapped, (s) => s.wrapperRssBytes, 0, MB)} MB (not in the table).`);
  const peaks = variants.map((v) => ({ v, peak: median(samples.filter((s) => s.variant === v.name).map((s) => s.peakRssBytes)) / MB }));
  out(`Target RSS peak < 150 MB at --concurrency 16: ${peaks.map(({ v, peak }) => `${v.name} ${peak < 150 ? 'met' : 'missed'} (${fixed(peak, 0)} MB)`).join(', ')}.`);
  out();
}

async function main(): Promise<void> {
  const missing = [BUILT_MAIN, TSX_CLI].filter((p) => !existsSync(join(root, p)));
  if (missing.length > 0) {
    note(`bench:footprint needs ${missing.join(' and ')}: run \`pnpm install && pnpm build\` first (this script builds nothing).`);
    process.exit(1);
  }
  const variants = VARIANT_NAMES.map(variant);
  const started = Date.now();
  const info = machine();
  note(`footprint on ${String(info.cpus)} cpus: ${variants.map((v) => v.name).join(', ')}, ${ROUNDS} rounds of ${BRANDS} brands`);
  const redisServer = await startRedisServer();
  const admin = createRedis(redisServer.url, 'client');
  const fakes = await startOpenFakes({ openai: { latencyMs: LLM_LATENCY }, tavily: { latencyMs: SEARCH_LATENCY } });
  const dir = await mkdtemp(join(tmpdir(), 'brandq-footprint-'));
  const samples: Sample[] = [];
  try {
    info.redis = await redisVersion(admin);
    const env = { ...fakes.env, REDIS_URL: redisServer.url, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...OPEN_LIMITS };
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotate the order so that whatever else loads the machine hits every variant alike.
      const order = variants.map((_, i) => variants[(i + round - 1) % variants.length] as Variant);
      for (const v of order) {
        note(`  round ${round}/${ROUNDS}: ${v.name} ...`);
        fakes.reset();
        const s = await measure(admin, v, round, env, dir);
        note(`    ready ${fixed(s.startToReadySeconds, 2)} s, first job ${fixed(s.startToFirstJobSeconds, 2)} s, idle ${fixed(s.idleRssBytes / MB, 0)} MB, peak ${fixed(s.peakRssBytes / MB, 0)} MB, HWM ${fixed(s.hwmBytes / MB, 0)} MB, ${fixed(s.brandsPerSecond, 0)} brands/s`);
        samples.push(s);
      }
    }
  } finally {
    admin.disconnect();
    await fakes.close();
    await redisServer.stop();
    await rm(dir, { recursive: true, force: true });
  }
  out('## pnpm bench:footprint');
  out();
  printTable(variants, samples);
  const date = String(info.date).slice(0, 10);
  const path = writeResult(`footprint-${date}`, {
    command: 'pnpm bench:footprint',
    machine: info,
    settings: { brands: BRANDS, rounds: ROUNDS, concurrency: CONCURRENCY, llmLatencyMs: LLM_LATENCY, searchLatencyMs: SEARCH_LATENCY, idleSettleMs: IDLE_SETTLE_MS, sampleEveryMs: SAMPLE_EVERY_MS },
    variants: variants.map(({ name, command }) => ({ name, command })),
    samples,
    totalSeconds: (Date.now() - started) / 1000,
  });
  note(`wrote ${path} (${Math.round((Date.now() - started) / 1000)} s)`);
}

main().catch((err: unknown) => {
  note(`bench:footprint failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
