/**
 * Redis memory per brand, measured: a run of N brands is enqueued exactly as `brandq
 * enqueue` does it (enqueueRun: the run's brands hash + one BullMQ job per brand), then
 * every brand is processed by a BullMQ worker that writes what the real pipeline writes
 * (a Tavily answer and an LLM answer through the result cache, each paid call reserved and
 * settled in the ledger, the search saved as the job's checkpoint, the result recorded),
 * with the fakes' answers and no provider call. Each N runs on its own throwaway
 * redis-server, so nothing else is counted.
 *
 *   npx tsx --conditions=@brandq/source bench/redis-memory.ts [--content <chars>] [N ...]   (default N: 1000 10000)
 *
 * `--content` pads each search hit's text to that many characters (the fakes' hits are
 * ~80; real Tavily hits are often 500-4,000, the client keeps at most 4,000).
 */
import { Redis } from 'ioredis';
import { FairScheduler } from '../packages/fair-share/src/index.js';
import { Worker, type Job } from 'bullmq';
import { ResultCache, cacheKeyOf } from '../packages/cache/src/index.js';
import { envSchema } from '../packages/config/src/index.js';
import { enqueueRun } from '../packages/run-service/src/index.js';
import { defaultRecipe } from '../packages/recipe/src/index.js';
import { expectedFacts, expectedSearchResults } from '../packages/fakes/src/index.js';
import { CostLedger } from '../packages/ledger/src/index.js';
import { BRAND_QUEUE, createBrandQueue, type BrandJobData } from '../packages/queue/src/index.js';
import { QUEUE_PREFIX, runKeyList, runKeys, scanKeys, startRedisServer } from '../packages/redis/src/index.js';
import { RunStore, pruneRuns } from '../packages/runs/src/index.js';
import { usedMemory, redisVersion } from './support/redis-info.js';

/** The defaults of JOB_KEEP_COMPLETED, JOB_KEEP_FAILED, JOB_ATTEMPTS, CACHE_TTL_HOURS, RUN_RETENTION_DAYS, read from the schema. */
const DEFAULTS = envSchema
  .pick({ JOB_KEEP_COMPLETED: true, JOB_KEEP_FAILED: true, JOB_ATTEMPTS: true, CACHE_TTL_HOURS: true, RUN_RETENTION_DAYS: true })
  .parse({});
const KEEP = { keepCompleted: DEFAULTS.JOB_KEEP_COMPLETED, keepFailed: DEFAULTS.JOB_KEEP_FAILED };
const ATTEMPTS = DEFAULTS.JOB_ATTEMPTS;
const CACHE_TTL_SECONDS = DEFAULTS.CACHE_TTL_HOURS * 3600;
const RETENTION_DAYS = DEFAULTS.RUN_RETENTION_DAYS;

interface Figures {
  redis: string;
  seconds: number;
  brands: number;
  contentChars: number;
  queued: { usedMemoryPerBrand: number; brandsHashPerBrand: number; jobPerBrand: number; waitListPerBrand: number };
  kept: {
    usedMemoryPerBrand: number;
    runKeysPerBrand: number;
    resultsPerBrand: number;
    settledBookingsPerBrand: number;
    ledgerBytes: number;
    cachePerBrand: number;
    completedJobsKept: number;
    completedJobBytesEach: number;
  };
  runExpiresInDays: number;
  /** What `pruneRuns` reports for the run (dry run): its keys, its jobs still in the queue, their bytes. */
  prune: { keys: number; jobs: number; bytes: number | null };
}

async function collect(keys: AsyncGenerator<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const key of keys) all.push(key);
  return all;
}

async function memoryOf(redis: Redis, key: string): Promise<number> {
  return Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
}

async function memoryOfKeys(redis: Redis, keys: string[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < keys.length; i += 500) total += (await Promise.all(keys.slice(i, i + 500).map((k) => memoryOf(redis, k)))).reduce((a, b) => a + b, 0);
  return total;
}

/** used_memory once the allocator has settled (two equal readings in a row, or the last of a few). */
async function settledUsedMemory(redis: Redis): Promise<number> {
  let last = await usedMemory(redis);
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await usedMemory(redis);
    if (now === last) return now;
    last = now;
  }
  return last;
}

function brandName(i: number): string {
  return `Brand ${String(i).padStart(5, '0')} Company`;
}

async function measure(n: number, contentChars: number): Promise<Figures> {
  const started = Date.now();
  const server = await startRedisServer();
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const queue = createBrandQueue(redis);
  const runs = new RunStore(redis, { retentionDays: RETENTION_DAYS });
  const ledger = new CostLedger(redis);
  const cache = new ResultCache(redis, { ttlSeconds: CACHE_TTL_SECONDS });
  const runId = `mem-${n}`;
  const workerConnection = redis.duplicate();
  try {
    await queue.waitUntilReady();
    const base = await settledUsedMemory(redis);

    const brands = Array.from({ length: n }, (_, i) => ({ key: brandName(i).toLowerCase(), name: brandName(i), rowNumber: i + 2, hints: {} }));
    const loaded = { source: { type: 'csv' as const, path: '/data/brands.csv' }, sourceKey: 'csv:/data/brands.csv', brands, skipped: [] };
    await enqueueRun({ runs, ledger, queue, scheduler: new FairScheduler(redis, queue) }, { runId, loaded, recipe: defaultRecipe(), budgetMicros: 1_000_000_000, attempts: ATTEMPTS, retention: KEEP });
    const queuedMemory = await settledUsedMemory(redis);
    const jobKeys = (await collect(scanKeys(redis, `${QUEUE_PREFIX}:${BRAND_QUEUE}:${runId}.*`))).filter((k) => !k.endsWith(':logs'));
    const queued = {
      usedMemoryPerBrand: (queuedMemory - base) / n,
      brandsHashPerBrand: (await memoryOf(redis, runKeys(runId).brands)) / n,
      jobPerBrand: (await memoryOfKeys(redis, jobKeys)) / n,
      waitListPerBrand: (await memoryOf(redis, `${QUEUE_PREFIX}:${BRAND_QUEUE}:wait`)) / n,
    };

    const pad = (text: string) => (text.length >= contentChars ? text : `${text} ${'lorem ipsum '.repeat(Math.ceil(contentChars / 12))}`.slice(0, contentChars));
    const worker = new Worker<BrandJobData & { checkpoint?: unknown }>(
      BRAND_QUEUE,
      async (job: Job<BrandJobData & { checkpoint?: unknown }>) => {
        const data = job.data;
        const query = `${data.name} brand company official website`;
        const { value: search } = await cache.getOrCompute('tavily', cacheKeyOf({ query, depth: 'basic', maxResults: 5 }), async () => {
          const reservation = await ledger.reserve(runId, 'tavily', 8000);
          await ledger.settle(reservation, { costMicros: 8000, credits: 1 });
          const hits = expectedSearchResults(query).map((h) => ({ title: h.title, url: h.url, content: pad(h.content), score: h.score }));
          return { query, hits, credits: 1, creditsReported: true, headers: {} };
        });
        await job.updateData({ ...data, checkpoint: { steps: { search: { search } } } });
        const { value: facts } = await cache.getOrCompute('llm', cacheKeyOf({ model: 'gpt-4o-mini', query, hits: search.hits }), async () => {
          const reservation = await ledger.reserve(runId, 'llm', 2000);
          await ledger.settle(reservation, { costMicros: 600, inputTokens: 900, outputTokens: 120 });
          return { ...expectedFacts(data.name), sources: search.hits.slice(0, 2).map((h) => h.url) };
        });
        await runs.recordSuccess({ runId, key: data.key, brand: data.name, rowNumber: data.rowNumber, fields: facts, processedAt: new Date().toISOString() });
      },
      { connection: workerConnection, prefix: QUEUE_PREFIX, concurrency: 32 },
    );
    for (;;) {
      const run = await runs.getRun(runId);
      if (run?.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    await worker.close();
    const keptMemory = await settledUsedMemory(redis);

    const keys = runKeys(runId);
    const completedJobs = (await collect(scanKeys(redis, `${QUEUE_PREFIX}:${BRAND_QUEUE}:${runId}.*`))).filter((k) => !k.endsWith(':logs'));
    const cacheKeys = await collect(scanKeys(redis, 'brandq:cache:*'));
    const completedBytes = await memoryOfKeys(redis, completedJobs);
    const report = await pruneRuns({ redis, runs, queue }, { olderThanMs: 0 });
    return {
      redis: await redisVersion(redis),
      seconds: Math.round((Date.now() - started) / 1000),
      brands: n,
      contentChars,
      queued,
      kept: {
        usedMemoryPerBrand: (keptMemory - base) / n,
        runKeysPerBrand: (await memoryOfKeys(redis, runKeyList(runId))) / n,
        resultsPerBrand: (await memoryOf(redis, keys.results)) / n,
        settledBookingsPerBrand: (await memoryOf(redis, keys.settledBookings)) / n,
        ledgerBytes: await memoryOf(redis, keys.ledger),
        cachePerBrand: (await memoryOfKeys(redis, cacheKeys)) / n,
        completedJobsKept: completedJobs.length,
        completedJobBytesEach: completedJobs.length === 0 ? 0 : completedBytes / completedJobs.length,
      },
      runExpiresInDays: (await redis.pttl(keys.meta)) / 86_400_000,
      prune: { keys: report.totals.keys, jobs: report.totals.jobs, bytes: report.totals.bytes },
    };
  } finally {
    await queue.close();
    workerConnection.disconnect();
    redis.disconnect();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let contentChars = 0;
  const counts: number[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--content') contentChars = Number(args[++i]);
    else counts.push(Number(args[i]));
  }
  if (counts.length === 0) counts.push(1000, 10_000);
  for (const n of counts) {
    const figures = await measure(n, contentChars);
    process.stdout.write(`${JSON.stringify(figures, (_, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 10) / 10 : v), 2)}\n`);
  }
}

await main();
