/**
 * `pnpm bench`: what brandq's own machinery costs, measured against the raw engine
 * underneath in the same run. Scenarios (BENCH_SCENARIOS, default all, in this order):
 *
 *   overhead    brands/s through producer + worker processes against instant fakes with
 *               the limits out of the way, next to raw BullMQ no-op jobs on the same Redis
 *               with the same processes and concurrency; ratio; Redis commands per brand.
 *   saturation  fakes with realistic latency (LLM 1-3 s, search 0.5-1.5 s) and limits,
 *               1/2/4/8 worker processes: throughput against min(limit-derived rate,
 *               concurrency / latency), 429s; side by side with the original design (each
 *               worker process limits itself in memory with the full limits).
 *   scale       enqueue BENCH_SCALE_ENQUEUE brands (time, Redis memory per queued brand);
 *               process BENCH_SCALE_PROCESS brands with instant fakes (brands/s, worker RSS,
 *               Redis memory after completion with the production retention settings).
 *   latency     limiter admission p50/p99 under 8 processes.
 *
 * Prints Markdown tables and writes bench/results/system.json.
 * Other env: BENCH_OVERHEAD_BRANDS (2000), BENCH_OVERHEAD_ROUNDS (3), BENCH_RAW_JOBS (20000), BENCH_SAT_WINDOW_MS
 * (5000), BENCH_SAT_SECONDS (20), BENCH_SAT_WORKERS (1,2,4,8), BENCH_SCALE_ENQUEUE (100000),
 * BENCH_SCALE_PROCESS (20000).
 */
import type { Redis } from 'ioredis';
import { cellLimits, runCell, type Cell } from './support/limit-cells.js';
import { memoryByFamily, runEnqueueOnly, runPipeline, runRaw, type CpuSplit, type PipelineRun, type RawRun } from './support/pipeline-runs.js';
import { redisVersion } from './support/redis-info.js';
import { fixed, machine, note, out, pct, table, writeResult } from './support/report.js';
import { createRedis, startFakes, startRedisServer, type Fakes } from './support/workspace.js';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'overhead,saturation,scale,latency').split(',');
const OVERHEAD_BRANDS = num('BENCH_OVERHEAD_BRANDS', 2000);
const OVERHEAD_ROUNDS = num('BENCH_OVERHEAD_ROUNDS', 3);
const RAW_JOBS = num('BENCH_RAW_JOBS', 20_000);
const SAT_WINDOW_MS = num('BENCH_SAT_WINDOW_MS', 5000);
const SAT_SECONDS = num('BENCH_SAT_SECONDS', 20);
const SAT_WORKERS = (process.env.BENCH_SAT_WORKERS ?? '1,2,4,8').split(',').map(Number);
const SCALE_ENQUEUE = num('BENCH_SCALE_ENQUEUE', 100_000);
const SCALE_PROCESS = num('BENCH_SCALE_PROCESS', 20_000);
/** Worker processes and per-process concurrency for the throughput scenarios (2 cores). */
const FAST_WORKERS = 2;
const FAST_CONCURRENCY = 16;

/** The limiter's default safetyMarginMs (the worker does not change it). */
const SAFETY_MARGIN_MS = 200;
const MB = 1024 * 1024;
const mb = (bytes: number) => fixed(bytes / MB, 1);

/** Provider limits far above anything the run reaches, and fakes granting the same. */
const OPEN = { rpm: 1_000_000, tpm: 1_000_000_000, concurrency: 1000 };

function openEnv(fakes: Fakes, redisUrl: string): Record<string, string> {
  return {
    ...fakes.env,
    REDIS_URL: redisUrl,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    OPENAI_RPM_LIMIT: String(OPEN.rpm),
    OPENAI_RPM_BURST: '10000',
    OPENAI_TPM_LIMIT: String(OPEN.tpm),
    OPENAI_MAX_CONCURRENCY: String(OPEN.concurrency),
    TAVILY_RPM_LIMIT: String(OPEN.rpm),
    TAVILY_RPM_BURST: '10000',
    TAVILY_MAX_CONCURRENCY: String(OPEN.concurrency),
  };
}

async function instantFakes(): Promise<Fakes> {
  return startFakes({ openai: { rpm: OPEN.rpm, tpm: OPEN.tpm }, tavily: { rpm: OPEN.rpm }, sheets: {} });
}

// ---- overhead ---------------------------------------------------------------------

interface Overhead {
  /** The median round of each (by throughput); every round is in `rounds`. */
  pipeline: PipelineRun;
  raw: RawRun;
  rawCalls: RawRun;
  /** Pipeline brands/s over raw no-op jobs/s (the target), and over raw jobs making the same calls; medians. */
  ratio: number;
  ratioToCalls: number;
  rounds: { raw: RawRun; rawCalls: RawRun; pipeline: PipelineRun }[];
}

function median<T>(items: T[], by: (t: T) => number): T {
  return [...items].sort((a, b) => by(a) - by(b))[Math.floor((items.length - 1) / 2)] as T;
}

/** Rounds of raw no-op, raw calls and pipeline, interleaved so that load from other work on the machine hits all three alike. */
async function overhead(admin: Redis, redisUrl: string): Promise<Overhead> {
  const fakes = await instantFakes();
  try {
    const env = openEnv(fakes, redisUrl);
    const rounds: Overhead['rounds'] = [];
    for (let round = 1; round <= OVERHEAD_ROUNDS; round++) {
      note(`  overhead round ${round}/${OVERHEAD_ROUNDS}: raw BullMQ, ${RAW_JOBS} no-op jobs ...`);
      const raw = await runRaw(admin, 'noop', RAW_JOBS, FAST_WORKERS, FAST_CONCURRENCY, env);
      note(`  overhead round ${round}/${OVERHEAD_ROUNDS}: raw BullMQ, ${OVERHEAD_BRANDS} jobs making the two provider calls ...`);
      fakes.reset();
      const rawCalls = await runRaw(admin, 'calls', OVERHEAD_BRANDS, FAST_WORKERS, FAST_CONCURRENCY, env);
      note(`  overhead round ${round}/${OVERHEAD_ROUNDS}: pipeline, ${OVERHEAD_BRANDS} brands ...`);
      fakes.reset();
      const pipeline = await runPipeline(admin, { label: `overhead-${round}`, brands: OVERHEAD_BRANDS, workers: FAST_WORKERS, concurrency: FAST_CONCURRENCY, env, timeoutMs: 10 * 60_000 });
      rounds.push({ raw, rawCalls, pipeline });
    }
    const raw = median(rounds.map((r) => r.raw), (r) => r.jobsPerSecond);
    const rawCalls = median(rounds.map((r) => r.rawCalls), (r) => r.jobsPerSecond);
    const pipeline = median(rounds.map((r) => r.pipeline), (r) => r.brandsPerSecond);
    return { pipeline, raw, rawCalls, ratio: pipeline.brandsPerSecond / raw.jobsPerSecond, ratioToCalls: pipeline.brandsPerSecond / rawCalls.jobsPerSecond, rounds };
  } finally {
    await fakes.close();
  }
}

// ---- saturation -------------------------------------------------------------------

const SAT = {
  concurrency: 4,
  llmLatency: { min: 1000, max: 3000 },
  searchLatency: { min: 500, max: 1500 },
  /** Requests per window (BENCH_SAT_WINDOW_MS), as rates: 3 LLM and 6 search calls a second. */
  llmPerSecond: 3,
  searchPerSecond: 6,
  llmConcurrency: 8,
  searchConcurrency: 10,
  llmTpm: 1_000_000,
};

interface SaturationCell {
  design: 'shared' | 'per-process';
  workers: number;
  bound: number;
  binding: string;
  run: PipelineRun;
  llm429: number;
  search429: number;
  /** Steady throughput as a share of the bound. */
  share: number;
}

function saturationBound(workers: number): { bound: number; binding: string } {
  const mean = (l: { min: number; max: number }) => (l.min + l.max) / 2000;
  const candidates: [string, number][] = [
    ['LLM requests/window', SAT.llmPerSecond],
    ['search requests/window', SAT.searchPerSecond],
    ['LLM concurrency / latency', SAT.llmConcurrency / mean(SAT.llmLatency)],
    ['search concurrency / latency', SAT.searchConcurrency / mean(SAT.searchLatency)],
    ['worker slots / latency', (workers * SAT.concurrency) / (mean(SAT.llmLatency) + mean(SAT.searchLatency))],
  ];
  const [binding, bound] = candidates.reduce((a, b) => (b[1] < a[1] ? b : a));
  return { bound, binding };
}

const errors: string[] = [];

async function saturation(admin: Redis, redisUrl: string): Promise<SaturationCell[]> {
  const windowS = SAT_WINDOW_MS / 1000;
  const llmRpm = Math.round(SAT.llmPerSecond * windowS);
  const searchRpm = Math.round(SAT.searchPerSecond * windowS);
  const cells: SaturationCell[] = [];
  for (const workers of SAT_WORKERS) {
    for (const design of ['shared', 'per-process'] as const) {
      const { bound, binding } = saturationBound(workers);
      const brands = Math.max(20, Math.round(bound * SAT_SECONDS));
      note(`  saturation: ${design} limiter, ${workers} workers, ${brands} brands ...`);
      const fakes = await startFakes({
        openai: { rpm: llmRpm, tpm: SAT.llmTpm, windowMs: SAT_WINDOW_MS, latencyMs: SAT.llmLatency, seed: 11 },
        tavily: { rpm: searchRpm, windowMs: SAT_WINDOW_MS, latencyMs: SAT.searchLatency, seed: 12 },
        sheets: {},
      });
      try {
        const env = {
          ...fakes.env,
          REDIS_URL: redisUrl,
          LOG_FORMAT: 'json',
          LOG_LEVEL: 'error',
          BENCH_WINDOW_MS: String(SAT_WINDOW_MS),
          OPENAI_RPM_LIMIT: String(llmRpm),
          OPENAI_RPM_BURST: '5',
          OPENAI_TPM_LIMIT: String(SAT.llmTpm),
          OPENAI_MAX_CONCURRENCY: String(SAT.llmConcurrency),
          TAVILY_RPM_LIMIT: String(searchRpm),
          TAVILY_RPM_BURST: '10',
          TAVILY_MAX_CONCURRENCY: String(SAT.searchConcurrency),
        };
        let run: PipelineRun;
        try {
          run = await runPipeline(admin, {
            label: `sat-${design}-${workers}`,
            brands,
            workers,
            concurrency: SAT.concurrency,
            env,
            timeoutMs: 180_000,
            localLimiter: design === 'per-process',
            // The first window is free at the provider (its sliding window starts empty): measure after it.
            steadyAfterMs: SAT_WINDOW_MS,
            overlapStartup: true,
          });
        } catch (err) {
          errors.push(`${design} x ${workers}: ${err instanceof Error ? err.message : String(err)}`);
          note(`    failed: ${errors[errors.length - 1]?.slice(0, 2000)}`);
          continue;
        }
        const steady = Number.isFinite(run.steadyBrandsPerSecond) ? run.steadyBrandsPerSecond : run.brandsPerSecond;
        cells.push({
          design,
          workers,
          bound,
          binding,
          run,
          llm429: fakes.openai.ledger.withStatus(429).length,
          search429: fakes.tavily.ledger.withStatus(429).length,
          share: steady / bound,
        });
      } finally {
        await fakes.close();
      }
    }
  }
  return cells;
}

// ---- scale ------------------------------------------------------------------------

interface Scale {
  enqueued: number;
  enqueueSeconds: number;
  bytesPerQueuedBrand: number;
  redisBytesQueued: number;
  processed: PipelineRun;
  memoryAfter: { family: string; keys: number; bytes: number }[];
}

async function scale(admin: Redis, redisUrl: string): Promise<Scale> {
  const fakes = await instantFakes();
  try {
    const env = openEnv(fakes, redisUrl);
    let enqueue = { seconds: Number.NaN, bytesPerBrand: Number.NaN, redisBytesQueued: Number.NaN };
    if (SCALE_ENQUEUE !== SCALE_PROCESS) {
      note(`  scale: enqueue ${SCALE_ENQUEUE} brands ...`);
      enqueue = await runEnqueueOnly(admin, 'scale-enqueue', SCALE_ENQUEUE, env);
    }
    note(`  scale: enqueue and process ${SCALE_PROCESS} brands ...`);
    const processed = await runPipeline(admin, { label: 'scale', brands: SCALE_PROCESS, workers: FAST_WORKERS, concurrency: FAST_CONCURRENCY, env, timeoutMs: 30 * 60_000 });
    const memoryAfter = await memoryByFamily(admin);
    if (SCALE_ENQUEUE === SCALE_PROCESS) {
      enqueue = { seconds: processed.enqueueSeconds, bytesPerBrand: (processed.redisBytesQueued - processed.redisBytesBefore) / SCALE_PROCESS, redisBytesQueued: processed.redisBytesQueued };
    }
    return { enqueued: SCALE_ENQUEUE, enqueueSeconds: enqueue.seconds, bytesPerQueuedBrand: enqueue.bytesPerBrand, redisBytesQueued: enqueue.redisBytesQueued, processed, memoryAfter };
  } finally {
    await fakes.close();
  }
}

// ---- report -----------------------------------------------------------------------

const cpuCell = (c: CpuSplit) => `${fixed(c.workers, 2)} / ${fixed(c.redis, 2)} / ${fixed(c.fakesAndBench, 2)}`;

const rawRow = (label: string, r: RawRun) => [
  label,
  String(r.jobs),
  `${r.workers} x ${r.concurrency}`,
  fixed(r.seconds),
  fixed(r.jobsPerSecond, 0),
  `${fixed(r.clientCommandsPerJob)} / ${fixed(r.serverCommandsPerJob)}`,
  cpuCell(r.cpuMsPerJob),
];

function printOverhead(o: Overhead): void {
  out(`### Overhead: full pipeline vs raw BullMQ (instant fakes, limits out of the way; median of ${o.rounds.length} interleaved rounds)`);
  out();
  out(
    table(
      ['run', 'items', 'processes x concurrency', 'seconds', 'items/s', 'Redis cmds/item (client / server)', 'CPU ms/item (workers / Redis / fakes)'],
      [
        rawRow('raw BullMQ no-op jobs', o.raw),
        rawRow('raw BullMQ jobs making the same search + LLM calls (brandq clients, no limiter/ledger/cache/run store)', o.rawCalls),
        [
          'brandq pipeline (search + LLM + limiter + budget + cache + run store)',
          String(o.pipeline.brands),
          `${o.pipeline.workers} x ${o.pipeline.concurrency}`,
          fixed(o.pipeline.seconds),
          fixed(o.pipeline.brandsPerSecond, 0),
          `${fixed(o.pipeline.clientCommandsPerBrand)} / ${fixed(o.pipeline.serverCommandsPerBrand)}`,
          cpuCell(o.pipeline.cpuMsPerBrand),
        ],
      ],
    ),
  );
  out();
  out(
    `Rounds (items/s): raw no-op ${o.rounds.map((r) => fixed(r.raw.jobsPerSecond, 0)).join(', ')}; raw calls ${o.rounds.map((r) => fixed(r.rawCalls.jobsPerSecond, 0)).join(', ')}; ` +
      `pipeline ${o.rounds.map((r) => fixed(r.pipeline.brandsPerSecond, 0)).join(', ')}.`,
  );
  out();
  const top = Object.entries(o.pipeline.clientCommandsByName).slice(0, 8);
  out(`Commands the workers sent per brand, by name: ${top.map(([name, n]) => `${name} ${fixed(n, 2)}`).join(', ')}.`);
  out();
  out(
    `Pipeline at ${pct(o.ratio)} of raw no-op throughput (target >= 25%: ${o.ratio >= 0.25 ? 'met' : `MISSED by ${fixed((0.25 - o.ratio) * 100)} points`}), ` +
      `and at ${pct(o.ratioToCalls)} of raw jobs making the same provider calls; ${o.pipeline.succeeded} brands succeeded, ${o.pipeline.failed} failed` +
      `${o.rawCalls.failed > 0 ? `; ${o.rawCalls.failed} raw call jobs failed` : ''}.`,
  );
  out();
}

function printSaturation(cells: SaturationCell[]): void {
  out(
    `### Saturation: LLM ${SAT.llmLatency.min / 1000}-${SAT.llmLatency.max / 1000} s, search ${SAT.searchLatency.min / 1000}-${SAT.searchLatency.max / 1000} s; ` +
      `limits ${SAT.llmPerSecond} LLM and ${SAT.searchPerSecond} search requests/s (per ${SAT_WINDOW_MS / 1000} s window), ${SAT.llmConcurrency} LLM and ${SAT.searchConcurrency} search calls in flight; ${SAT.concurrency} jobs per worker process`,
  );
  out();
  out(
    table(
      ['workers', 'limiter', 'brands', 'bound brands/s', 'binding', 'steady brands/s', 'of bound', 'overall brands/s', '429s (LLM / search)', 'failed', 'note'],
      cells.map((c) => [
        String(c.workers),
        c.design === 'shared' ? 'brandq shared (Redis)' : 'per process (original)',
        String(c.run.brands),
        fixed(c.bound, 2),
        c.binding,
        fixed(c.run.steadyBrandsPerSecond, 2),
        pct(c.share),
        fixed(c.run.brandsPerSecond, 2),
        `${c.llm429} / ${c.search429}`,
        String(c.run.failed),
        c.run.timedOut ? `timed out (${c.run.succeeded} done)` : '',
      ]),
    ),
  );
  out();
  out(
    `Steady = completions from the end of the first ${SAT_WINDOW_MS / 1000} s window (or the 10th percentile, if later) to the 90th percentile, over that span: ` +
      'the first window is free at the provider, whose sliding window starts empty. Overall = all brands / time from release to the last outcome. ' +
      `The shared limiter keeps each request counted ${SAFETY_MARGIN_MS} ms past the window (safetyMarginMs), so at the limit it can reach ${pct(SAT_WINDOW_MS / (SAT_WINDOW_MS + SAFETY_MARGIN_MS))} of a ${SAT_WINDOW_MS / 1000} s window's rate (99.7% of a real minute's).`,
  );
  out();
}

function printScale(s: Scale): void {
  const p = s.processed;
  out(`### Scale`);
  out();
  out(
    table(
      ['measure', 'value'],
      [
        [`enqueue ${s.enqueued} brands (pnpm enqueue, process start included)`, `${fixed(s.enqueueSeconds)} s (${fixed(s.enqueued / s.enqueueSeconds, 0)} brands/s)`],
        ['Redis memory per queued brand', `${fixed(s.bytesPerQueuedBrand, 0)} B (${mb(s.redisBytesQueued)} MB for ${s.enqueued})`],
        [`process ${p.brands} brands, ${p.workers} x ${p.concurrency}, instant fakes`, `${fixed(p.seconds)} s, ${fixed(p.brandsPerSecond, 0)} brands/s (${p.succeeded} ok, ${p.failed} failed)`],
        ['worker RSS idle after start -> peak', p.workerPeakRssBytes.map((b, i) => `${mb(p.workerReadyRssBytes[i] ?? Number.NaN)} -> ${mb(b)} MB`).join(', ')],
        [`Redis memory queued (${p.brands} brands)`, `${mb(p.redisBytesQueued)} MB`],
        ['Redis memory after completion (JOB_KEEP_COMPLETED=1000, JOB_KEEP_FAILED=10000, CACHE_TTL_HOURS=168)', `${mb(p.redisBytesAfter)} MB (${fixed(p.redisBytesAfter / p.brands, 0)} B per brand)`],
      ],
    ),
  );
  out();
  out('Largest key families after completion:');
  out();
  out(table(['family', 'keys', 'MB'], s.memoryAfter.slice(0, 8).map((f) => [f.family, String(f.keys), mb(f.bytes)])));
  out();
}

function printLatency(cells: Cell[]): void {
  out('### Limiter admission latency, 8 processes x 2 callers, limits out of the way');
  out();
  out(
    table(
      ['limiter', 'admissions/s', 'p50 ms', 'p99 ms', 'Redis cmds/call (client / server)'],
      cells.map((c) => [c.variant === 'brandq' ? 'brandq shared (Redis)' : 'in-process (no Redis), reference', fixed(c.admissionsPerSecond, 0), fixed(c.admitP50Ms, 2), fixed(c.admitP99Ms, 2), `${fixed(c.clientCommandsPerCall)} / ${fixed(c.serverCommandsPerCall)}`]),
    ),
  );
  out();
}

async function main(): Promise<void> {
  const started = Date.now();
  const info = machine();
  note(`bench on ${String(info.cpus)} cpus (${String(info.cpuModel)}): ${SCENARIOS.join(', ')}`);
  const redisServer = await startRedisServer();
  const admin = createRedis(redisServer.url, 'client');
  info.redis = await redisVersion(admin);
  const result: Record<string, unknown> = { command: 'pnpm bench', machine: info };
  try {
    out('## pnpm bench');
    out();
    if (SCENARIOS.includes('overhead')) {
      const o = await overhead(admin, redisServer.url);
      result.overhead = o;
      printOverhead(o);
    }
    if (SCENARIOS.includes('saturation')) {
      const s = await saturation(admin, redisServer.url);
      result.saturation = { windowMs: SAT_WINDOW_MS, settings: SAT, cells: s };
      printSaturation(s);
    }
    if (SCENARIOS.includes('scale')) {
      const s = await scale(admin, redisServer.url);
      result.scale = s;
      printScale(s);
    }
    if (SCENARIOS.includes('latency')) {
      note('  latency: brandq and in-process limiter, 8 processes ...');
      const limits = cellLimits(8000);
      const cells = [await runCell(admin, redisServer.url, limits, 'brandq', 8, 'probe'), await runCell(admin, redisServer.url, limits, 'inproc', 8, 'probe')];
      result.latency = cells;
      printLatency(cells);
      const b = cells[0];
      if (b) out(`Admission p50 < 1 ms on loopback: ${b.admitP50Ms < 1 ? 'met' : 'MISSED'} (p50 ${fixed(b.admitP50Ms, 2)} ms, p99 ${fixed(b.admitP99Ms, 2)} ms).`);
    }
  } finally {
    admin.disconnect();
    await redisServer.stop();
  }
  if (errors.length > 0) {
    out(`Cells that failed: ${errors.map((e) => e.split('\n')[0]).join('; ')}`);
    result.errors = errors;
  }
  result.totalSeconds = (Date.now() - started) / 1000;
  const path = writeResult('system', result);
  note(`wrote ${path} (${Math.round((Date.now() - started) / 1000)} s)`);
}

main().catch((err: unknown) => {
  note(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
