/**
 * The baselines of `pnpm bench`: a BullMQ worker process on queue RAW_QUEUE with the
 * connection and worker options apps/worker uses, whose jobs either do nothing
 * (RAW_MODE=noop) or make the same two provider calls a brand makes - a search, then the
 * extraction prompt built from its hits - with brandq's own clients, but none of the
 * machinery around them (limiter, budget ledger, cache, run store, checkpoint) (RAW_MODE=calls).
 * Prints READY once connected and `BENCH_COMMANDS ...` (Redis commands sent) when stopped with SIGTERM.
 */
import { writeSync } from 'node:fs';
import { Worker, type Job } from 'bullmq';
import { commandLine, installCommandCounter } from './support/command-counter.js';
import { createRedis, QUEUE_PREFIX } from '../packages/redis/src/index.js';
import { LlmClient } from '../packages/llm/src/index.js';
import { planLlm, planSearch, stepDefaultsOf } from '../packages/pipeline/src/index.js';
import { defaultRecipe, type LlmStep, type SearchStep } from '../packages/recipe/src/index.js';
import { TavilySearchClient } from '../packages/tavily/src/index.js';

const counter = installCommandCounter();
const queue = process.env.RAW_QUEUE ?? 'bench-raw';
const concurrency = Number(process.env.CONCURRENCY ?? '8');
const lockMs = Number(process.env.JOB_LOCK_SECONDS ?? '30') * 1000;
const connection = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'worker');

const search = new TavilySearchClient({ apiKey: process.env.TAVILY_API_KEY, baseUrl: process.env.TAVILY_BASE_URL ?? '', depth: 'basic', maxResults: 5, timeoutSeconds: 30 });
const llm = new LlmClient({ apiKey: process.env.OPENAI_API_KEY, baseURL: process.env.OPENAI_BASE_URL ?? '', model: 'gpt-4o-mini', maxOutputTokens: 600, timeoutMs: 60_000 });

// The default recipe's two steps, made into requests the way the pipeline makes them.
const [searchStep, factsStep] = defaultRecipe().steps as [SearchStep, LlmStep];
const defaults = stepDefaultsOf({ TAVILY_SEARCH_DEPTH: 'basic', TAVILY_MAX_RESULTS: 5, OPENAI_MODEL: 'gpt-4o-mini', OPENAI_MAX_OUTPUT_TOKENS: 600 });

async function calls(job: Job<{ name: string }>): Promise<void> {
  const ctx = { brand: job.data.name, hints: {}, results: {}, fields: {} };
  const searchPlan = planSearch(searchStep, ctx, defaults);
  const outcome = await search.search(searchPlan.query, searchPlan.request);
  const answer = await llm.complete(planLlm(factsStep, { ...ctx, results: { [searchStep.id]: outcome.hits } }, defaults).request);
  if (!('json' in answer)) throw new Error('the fake LLM answered without JSON');
}

const worker = new Worker(queue, process.env.RAW_MODE === 'calls' ? calls : async () => undefined, {
  connection,
  prefix: QUEUE_PREFIX,
  concurrency,
  lockDuration: lockMs,
  stalledInterval: lockMs,
  maxStalledCount: 5,
});
await worker.waitUntilReady();
process.stdout.write('READY\n');
process.on('SIGTERM', () => {
  void worker.close().then(async () => {
    await connection.quit().catch(() => connection.disconnect());
    writeSync(2, commandLine(counter));
    process.exit(0);
  });
});
