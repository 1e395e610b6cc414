import { constants as osConstants } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'bullmq';
import { loadConfig } from '@brandq/config';
import { ConfigError, isBrandqError } from '@brandq/errors';
import { CostLedger, microsToUsd } from '@brandq/ledger';
import { BrandqMetrics, cacheMetrics, pipelineMetrics, startMetricsServer } from '@brandq/metrics';
import { LlmClient, ModelPrices, loadTokenizer } from '@brandq/llm';
import { createLogger } from '@brandq/logger';
import { BatchApi, BatchCoordinator, BatchDesk } from '@brandq/batch';
import { ResultCache } from '@brandq/cache';
import { BrandPipeline, FinalFailure, brandBackoffStrategy, createBrandJobProcessor, stepDefaultsOf, type StoredJobData } from '@brandq/pipeline';
import { BRAND_QUEUE, BACKOFF_TYPE, createBrandQueue } from '@brandq/queue';
import { QUEUE_PREFIX, createRedis, pings, redactUrl, redisOutageLog } from '@brandq/redis';
import { RunStore, RunTimeline } from '@brandq/runs';
import { SheetFlusher, SheetWriteQueue, SheetsClient } from '@brandq/sheets';
import { TavilySearchClient } from '@brandq/tavily';
import { createProviderGate } from './provider-gate.js';
import { RunTimelineRecorder, allObservers } from './run-timeline-recording.js';
import { runCallShares } from './run-call-shares.js';

/** A batch's budget reservations outlive its provider's 24-hour window. */
const BATCH_RESERVATION_MS = 25 * 3600_000;

/** How long a cache fill lock lives between renewals (the filler renews it every third of that). */
const CACHE_FILL_LOCK_MS = 10_000;

/** What a stopping worker gets beyond SHUTDOWN_GRACE_SECONDS to close its connections before it exits anyway. */
const SHUTDOWN_MARGIN_MS = 5_000;

const USAGE = `usage: brandq worker [--concurrency <n>]   (or: pnpm worker)

One worker process: takes brand jobs from the queue in REDIS_URL until SIGINT or SIGTERM.

  --concurrency <n>   jobs at once in this process (default: WORKER_CONCURRENCY)
  -h, --help          this text

On SIGINT/SIGTERM it finishes its active jobs for up to SHUTDOWN_GRACE_SECONDS, hands the rest
back, and exits within a few seconds more, with Redis up or down; a second signal exits at once.
Every setting is an environment variable: see .env.example.`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { concurrency: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = loadConfig();
  const concurrency = values.concurrency === undefined ? config.WORKER_CONCURRENCY : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new ConfigError(`--concurrency must be a positive integer, got "${values.concurrency}"`);
  const logger = createLogger({ name: 'worker', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  const prices = new ModelPrices({ baseURL: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY, table: config.LLM_PRICING });
  // The default model must have a price before any job is taken; models named by a recipe's
  // steps are priced when first called (and such a run's preflight already checked them).
  await prices.priceOf(config.OPENAI_MODEL);
  loadTokenizer();

  if (!(await pings(config.REDIS_URL, 3000))) {
    logger.warn({ redis: redactUrl(config.REDIS_URL) }, 'Redis is not answering yet; the worker keeps retrying to connect');
  }
  const client = createRedis(config.REDIS_URL, 'client');
  const blocking = createRedis(config.REDIS_URL, 'worker');
  const outage = redisOutageLog(logger);
  for (const conn of [client, blocking]) {
    conn.on('error', (err: Error) => (outage.lost(err) ? outage.down(err) : logger.warn({ err: err.message }, 'Redis connection error')));
    conn.on('ready', () => outage.up());
  }

  const runs = new RunStore(client, { retentionDays: config.RUN_RETENTION_DAYS });
  const timeline = new RunTimelineRecorder(new RunTimeline(client), logger);
  const sheetWrites = new SheetWriteQueue(client);
  const ledger = new CostLedger(client, undefined, undefined, (err, waitMs) => {
    metrics.redisRetries.inc({ what: 'booking' });
    logger.warn({ err: err.message, waitMs }, 'Redis cannot book money yet (full or away); retrying');
  });
  const queue = createBrandQueue(client);
  queue.on('error', (err: Error) => (outage.lost(err) ? outage.down(err) : logger.error({ err: err.message }, 'queue error')));
  // Read at scrape time, after the gate below exists.
  const metrics = new BrandqMetrics({
    limiter: () => gate.metricsSnapshot(),
    queueDepth: async () => {
      // Fair shares queue every job with a priority: those wait their turn as much as any.
      const { prioritized = 0, waiting = 0, ...rest } = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
      return { waiting: waiting + prioritized, ...rest };
    },
    budgets: async () => {
      const out: Record<string, number> = {};
      for (const run of await runs.listRuns(20)) {
        // Held and finished runs too: what a run stopped at (0 when out of budget) is the point.
        if (run.status === 'cancelled') continue;
        const money = await ledger.snapshot(run.id);
        if (money.budgetMicros > 0) out[run.id] = microsToUsd(Math.max(0, money.budgetMicros - money.spentMicros));
      }
      return out;
    },
  });
  const gate = createProviderGate(client, config, logger, (provider, reason) => {
    metrics.limiterDeferrals.inc({ provider, reason });
    timeline.deferred(reason);
    if (reason === 'stagger') metrics.staggerDelays.inc({ provider });
    if (reason === 'tokens') metrics.tpmDeferrals.inc({ provider });
  });
  const shares = runCallShares(client, metrics, logger);
  const pipeline = new BrandPipeline({
    runs,
    shares,
    ledger,
    observer: allObservers(pipelineMetrics(metrics), timeline.observer),
    search: new TavilySearchClient({
      apiKey: config.TAVILY_API_KEY,
      baseUrl: config.TAVILY_BASE_URL,
      depth: config.TAVILY_SEARCH_DEPTH,
      maxResults: config.TAVILY_MAX_RESULTS,
      timeoutSeconds: config.TAVILY_TIMEOUT_SECONDS,
    }),
    llm: new LlmClient({
      apiKey: config.OPENAI_API_KEY,
      baseURL: config.OPENAI_BASE_URL,
      model: config.OPENAI_MODEL,
      maxOutputTokens: config.OPENAI_MAX_OUTPUT_TOKENS,
      timeoutMs: config.OPENAI_TIMEOUT_SECONDS * 1000,
      flexTimeoutMs: config.FLEX_TIMEOUT_SECONDS * 1000,
      referer: config.OPENROUTER_REFERER,
      title: config.OPENROUTER_TITLE,
    }),
    sheetWrites,
    batches: new BatchDesk(client),
    gate,
    cache:
      config.CACHE_TTL_HOURS > 0
        ? new ResultCache(client, {
            ttlSeconds: config.CACHE_TTL_HOURS * 3600,
            // A waiter gives up (one transient attempt) only after the filler's whole call could
            // have ended: its limiter wait (bounded here at 2 min) and the provider's timeout.
            waitTimeoutMs: CACHE_FILL_LOCK_MS + 120_000 + Math.max(config.OPENAI_TIMEOUT_SECONDS, config.TAVILY_TIMEOUT_SECONDS) * 1000,
            fillLockMs: CACHE_FILL_LOCK_MS,
            observer: cacheMetrics(metrics),
            logger,
          })
        : undefined,
    priceOf: (model) => prices.priceOf(model),
    defaults: stepDefaultsOf(config),
    llmReserveFactor: config.LLM_RESERVE_FACTOR,
    tavilyUsdPerCredit: config.TAVILY_COST_PER_CREDIT,
    logger,
  });
  const processor = createBrandJobProcessor({
    pipeline,
    runs,
    logger,
    rateLimitMaxAttempts: config.OPENAI_RETRY_MAX_ATTEMPTS,
    rateLimitBackoffBaseMs: config.OPENAI_BACKOFF_BASE_SECONDS * 1000,
    pausedRecheckMs: 30_000,
    flexBackoffBaseMs: config.OPENAI_BACKOFF_BASE_SECONDS * 1000,
    flexFallbackAfterMs: config.FLEX_FALLBACK_AFTER_SECONDS * 1000,
    // The coordinator wakes a parked job when its answer is in; this recheck covers a wake
    // lost to a coordinator killed between handing the answer back and waking the job.
    batchParkRecheckMs: Math.max(30_000, 4 * config.BATCH_POLL_SECONDS * 1000),
  });
  const backoff = brandBackoffStrategy(config.JOB_BACKOFF_BASE_SECONDS * 1000);

  const worker = new Worker<StoredJobData>(BRAND_QUEUE, timeline.processorFor(processor), {
    connection: blocking,
    prefix: QUEUE_PREFIX,
    concurrency,
    lockDuration: config.JOB_LOCK_SECONDS * 1000,
    stalledInterval: config.JOB_LOCK_SECONDS * 1000,
    // A job whose worker was killed is retried from its checkpoint; only a job that keeps
    // killing workers should fail for stalling.
    maxStalledCount: 5,
    settings: { backoffStrategy: (attemptsMade, type, err) => (type === BACKOFF_TYPE ? backoff(attemptsMade, type, err) : -1) },
  });
  const seconds = (job: { processedOn?: number | undefined; finishedOn?: number | undefined }) =>
    job.processedOn && job.finishedOn ? (job.finishedOn - job.processedOn) / 1000 : 0;
  worker.on('completed', (job, result: { fresh: boolean }) => {
    metrics.jobsCompleted.inc({ outcome: result.fresh ? 'fresh' : 'existing' });
    shares.shares.finished(job.data.runId).catch((err: unknown) => logger.debug({ err: String(err) }, 'finished brand not counted'));
    metrics.jobDuration.observe({ outcome: 'completed' }, seconds(job));
    logger.info({ runId: job.data.runId, brand: job.data.name, jobId: job.id }, 'brand done');
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    const kind = isBrandqError(err) || err instanceof FinalFailure ? err.kind : 'error';
    if (final) metrics.jobsFailed.inc({ reason: kind });
    if (final && !isBrandqError(err) && !(err instanceof FinalFailure)) {
      // Failed by BullMQ itself (stalled too often, lock lost): the processor never recorded it.
      void runs
        .recordFailure({ runId: job.data.runId, key: job.data.key, brand: job.data.name, rowNumber: job.data.rowNumber, kind: 'stalled', reason: err.message, attempts: job.attemptsMade, failedAt: new Date().toISOString() })
        .catch((e: unknown) => logger.error({ err: String(e) }, 'could not record failure'));
    }
    else metrics.retries.inc({ provider: isBrandqError(err) ? (err.provider ?? 'none') : 'none', kind });
    metrics.jobDuration.observe({ outcome: final ? 'failed' : 'retry' }, seconds(job));
    logger.warn({ runId: job.data.runId, brand: job.data.name, jobId: job.id, attemptsMade: job.attemptsMade, final, err: isBrandqError(err) ? err.toJSON() : err.message }, 'brand attempt failed');
  });
  worker.on('error', (err) => (outage.lost(err) ? outage.down(err) : logger.error({ err: err.message }, 'worker error')));
  // Loopback unless METRICS_HOST says otherwise: /metrics has no auth (compose opens it to Prometheus).
  const metricsServer = config.METRICS_PORT > 0 ? await startMetricsServer(metrics.registry, config.METRICS_PORT, config.METRICS_HOST) : undefined;
  logger.info({ concurrency, queue: BRAND_QUEUE, pid: process.pid, metricsPort: metricsServer?.port }, 'worker started');
  // Every worker runs one; only the holder of the fleet-wide lease writes queued sheet rows.
  const sheetFlusher = new SheetFlusher({
    redis: client,
    sheets: new SheetsClient({ rootUrl: config.GOOGLE_SHEETS_ROOT_URL, accessToken: config.GOOGLE_SHEETS_ACCESS_TOKEN, keyFile: config.GOOGLE_APPLICATION_CREDENTIALS }),
    gate,
    flushRows: config.SHEETS_FLUSH_ROWS,
    flushSeconds: config.SHEETS_FLUSH_SECONDS,
    logger,
  });
  sheetFlusher.start();
  // Every worker runs one; only the holder of the fleet-wide lease submits and collects batches.
  const batchCoordinator = new BatchCoordinator({
    redis: client,
    api: new BatchApi({ apiKey: config.OPENAI_API_KEY, baseURL: config.OPENAI_BASE_URL }),
    runs,
    // A batch may take its provider's whole 24 hours: its budget stays held that long.
    ledger: new CostLedger(client, BATCH_RESERVATION_MS),
    queue,
    priceOf: (model) => prices.priceOf(model),
    maxRequests: config.BATCH_MAX_REQUESTS,
    maxBytes: config.BATCH_MAX_BYTES,
    gatherMs: config.BATCH_GATHER_SECONDS * 1000,
    pollMs: config.BATCH_POLL_SECONDS * 1000,
    leaseMs: config.BATCH_LEASE_SECONDS * 1000,
    queueTokens: config.BATCH_QUEUE_TOKENS,
    requestAttempts: config.BATCH_REQUEST_ATTEMPTS,
    logger,
  });
  batchCoordinator.start();

  let stopping = false;
  const stop = async (signal: 'SIGINT' | 'SIGTERM') => {
    if (stopping) {
      // The user asked twice: no more waiting (active jobs' locks lapse, another worker takes them).
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      // The shell's 128 + n exit code of a process ended by signal n.
      process.exit(128 + osConstants.signals[signal]);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: finishing active jobs');
    // Finish what is running if it ends within the grace period; otherwise hand the jobs
    // back (their locks lapse and another worker picks them up).
    const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000;
    const grace = setTimeout(() => {
      logger.warn('grace period over: handing active jobs back');
      void worker.close(true);
    }, graceMs);
    grace.unref();
    // With Redis down, closing never completes (quit and the queue's commands wait for a
    // reconnect): the process exits anyway, a few seconds after the grace period.
    const deadline = setTimeout(() => {
      logger.error({ signal, graceSeconds: config.SHUTDOWN_GRACE_SECONDS }, 'could not close cleanly (Redis unreachable?): exiting');
      logger.flush();
      process.exit(1);
    }, graceMs + SHUTDOWN_MARGIN_MS);
    deadline.unref();
    await worker.close();
    clearTimeout(grace);
    // After the jobs (they queue rows), before the gate and Redis (the flush needs both).
    await sheetFlusher.stop();
    await batchCoordinator.stop();
    await gate.close();
    await metricsServer?.close();
    await queue.close();
    await Promise.all([client.quit().catch(() => client.disconnect()), blocking.quit().catch(() => blocking.disconnect())]);
    logger.info('worker stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
