/**
 * One run of `pnpm bench:tiers`: a clean Redis, fresh fakes (their ledgers empty), worker
 * processes (apps/worker/src/main.ts as shipped) and a run created the way the CLI and the
 * board create one (the run service's `createRun`) at an LLM tier; read back from brandq's
 * ledger and from the fake OpenAI's own bills. The packages are imported from their
 * sources, like those in workspace.ts.
 */
import type { Redis } from 'ioredis';
import { loadConfig } from '../../packages/config/src/index.js';
import { llmCostMicros as fakeLlmCostMicros, type LedgerBatch, type TierTotals } from '../../packages/fakes/src/index.js';
import { CostLedger, type LedgerSnapshot, type LlmTier } from '../../packages/ledger/src/index.js';
import type { Recipe } from '../../packages/recipe/src/index.js';
import { createRun } from '../../packages/run-service/src/index.js';
import { DEMO_LIMITS } from '../../apps/demo/src/demo-limits.js';
import { brandNames, sleep } from './pipeline-runs.js';
import { RunStore, createBrandQueue, spawnTs, startFakes, waitForExit, type SpawnedProcess } from './workspace.js';

/** How a run's LLM calls are served, and what the fake does to flex requests. */
export interface TierVariant {
  /** Names the variant in tables and JSON. */
  label: string;
  tier: LlmTier;
  /** Share of flex requests the fake refuses with 429 Resource Unavailable (unbilled). */
  flexUnavailableRate?: number;
  /** The run's `--flex-fallback-after`: a brand refused this long goes at the standard tier and price. */
  flexFallbackAfterMs?: number;
}

export interface TierRunSettings {
  brands: number;
  workers: number;
  concurrency: number;
  /** The fake completes a batch this long after it is created. */
  batchDelayMs: number;
  batchGatherSeconds: number;
  batchPollSeconds: number;
  timeoutMs: number;
}

export interface TierRun {
  recipe: string;
  variant: TierVariant;
  brands: number;
  succeeded: number;
  failed: number;
  /** `createRun` (load, preflight, enqueue), workers already registered. */
  createSeconds: number;
  /** From the run's creation to its last brand's outcome. */
  seconds: number;
  /** brandq's ledger for the run. */
  ledger: LedgerSnapshot;
  /** The fake OpenAI's bills per tier (chat requests and batch lines): the ground truth. */
  fakeByTier: Record<LlmTier, TierTotals>;
  fakeLlmBilledMicros: number;
  /** The fake's billed LLM calls repriced one by one at the fake's standard price. */
  fakeLlmAtStandardMicros: number;
  fakeSearchBilledMicros: number;
  fakeSearchCredits: number;
  /** Flex requests the fake refused for capacity (not billed). */
  flexRefusals: number;
  batches: Pick<LedgerBatch, 'id' | 'status' | 'lineCount' | 'completed' | 'failed' | 'createdAt' | 'endedAt'>[];
  /** custom_ids submitted in more than one batch, and billed more than once (both should be empty). */
  batchCustomIdsInSeveralBatches: number;
  batchCustomIdsBilledTwice: number;
}

/** Runs `recipe` over `settings.brands` brands at the variant's tier and reads both ledgers. */
export async function runAtTier(admin: Redis, redisUrl: string, recipe: Recipe, variant: TierVariant, settings: TierRunSettings): Promise<TierRun> {
  // One Redis per run: no cached answer, limiter window or parked request crosses from the last.
  await admin.flushall();
  const fakes = await startFakes({
    openai: { latencyMs: { min: 80, max: 300 }, seed: 7, batchDelayMs: settings.batchDelayMs, flexUnavailableRate: variant.flexUnavailableRate ?? 0 },
    tavily: { latencyMs: { min: 40, max: 150 }, seed: 11 },
    sheets: {},
  });
  const env: Record<string, string> = {
    ...fakes.env,
    REDIS_URL: redisUrl,
    OPENAI_MODEL: 'gpt-4o-mini',
    // The fake serves gpt-4o-mini at Flex; brandq's default list (OpenAI's) does not name it.
    LLM_FLEX_MODELS: 'gpt-4o-mini',
    // The demo's limits: far from binding, so the tiers' own waits are what differ.
    ...DEMO_LIMITS,
    BATCH_GATHER_SECONDS: String(settings.batchGatherSeconds),
    BATCH_POLL_SECONDS: String(settings.batchPollSeconds),
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'error',
  };
  const queue = createBrandQueue(admin);
  const runs = new RunStore(admin);
  const procs: SpawnedProcess[] = Array.from({ length: settings.workers }, () => spawnTs('apps/worker/src/main.ts', ['--concurrency', String(settings.concurrency)], env));
  try {
    await waitForWorkers(queue, procs, 120_000);
    const runId = `tiers-${recipe.name}-${variant.label}`;
    const names = brandNames(settings.brands, 'Tier Bench');
    const created = performance.now();
    const outcome = await createRun(
      { redis: admin, queue, config: loadConfig(env) },
      {
        source: { csvText: `brand\n${names.join('\n')}\n` },
        runId,
        budgetMicros: 0,
        recipe,
        noCache: true,
        force: false,
        allowPartial: false,
        refuseDuringCooldown: false,
        llmTier: variant.tier,
        flexFallbackAfterMs: variant.flexFallbackAfterMs,
      },
    );
    if (outcome.kind !== 'created' || outcome.enqueued !== settings.brands) throw new Error(`run ${runId} not created with ${settings.brands} brands: ${JSON.stringify(outcome).slice(0, 500)}`);
    const createSeconds = (performance.now() - created) / 1000;
    const createdAt = Date.now() - createSeconds * 1000;
    const run = await waitForOutcomes(runs, runId, procs, settings.timeoutMs);
    const lastOutcomeAt = await lastOutcomeOf(runs, runId);
    const ledger = await new CostLedger(admin).snapshot(runId);

    const openai = fakes.openai.ledger;
    const billedLlm = openai.filter((e) => e.billed && e.tier !== undefined);
    const searches = fakes.tavily.ledger.filter((e) => e.billed);
    return {
      recipe: recipe.name,
      variant,
      brands: settings.brands,
      succeeded: run.succeeded,
      failed: run.failed,
      createSeconds,
      seconds: (lastOutcomeAt - createdAt) / 1000,
      ledger,
      fakeByTier: openai.tierTotals(),
      fakeLlmBilledMicros: openai.billedMicros(),
      fakeLlmAtStandardMicros: billedLlm.reduce((sum, e) => sum + fakeLlmCostMicros(fakes.openai.priceOf(e.model ?? ''), e.promptTokens ?? 0, e.completionTokens ?? 0), 0),
      fakeSearchBilledMicros: searches.reduce((sum, e) => sum + e.costMicros, 0),
      fakeSearchCredits: searches.reduce((sum, e) => sum + (e.credits ?? 0), 0),
      flexRefusals: openai.filter((e) => e.tier === 'flex' && e.errorCode === 'resource_unavailable').length,
      batches: openai.batches().map((b) => ({ id: b.id, status: b.status, lineCount: b.lineCount, completed: b.completed, failed: b.failed, createdAt: b.createdAt, endedAt: b.endedAt })),
      batchCustomIdsInSeveralBatches: openai.batchCustomIdsInSeveralBatches().length,
      batchCustomIdsBilledTwice: openai.batchCustomIdsBilledTwice().length,
    };
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => waitForExit(p, 30_000).catch(() => p.kill('SIGKILL'))));
    await queue.close();
    await fakes.close();
  }
}

async function waitForWorkers(queue: ReturnType<typeof createBrandQueue>, procs: readonly SpawnedProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await queue.getWorkers()).length < procs.length) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`a worker exited before it was ready:\n${dead.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`workers not ready within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function waitForOutcomes(runs: RunStore, runId: string, procs: readonly SpawnedProcess[], timeoutMs: number): Promise<{ succeeded: number; failed: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.getRun(runId);
    if (run && run.succeeded + run.failed >= run.total) return run;
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`a worker exited during run ${runId}:\n${dead.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`run ${runId} not finished within ${timeoutMs} ms (${run?.succeeded ?? 0} ok, ${run?.failed ?? 0} failed of ${run?.total ?? '?'})`);
    await sleep(100);
  }
}

/** Epoch ms of the run's last outcome (a result's `processedAt` or a failure's `failedAt`). */
async function lastOutcomeOf(runs: RunStore, runId: string): Promise<number> {
  let last = 0;
  for await (const r of runs.results(runId)) last = Math.max(last, Date.parse(r.processedAt));
  for await (const f of runs.failures(runId)) last = Math.max(last, Date.parse(f.failedAt));
  return last;
}
