import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, readEnv } from '@brandq/config';
import { startFakes, type Ledger } from '@brandq/fakes';
import { CostLedger, LLM_TIERS, llmCostMicros, microsToUsd, tierPrice, type LedgerSnapshot, type LlmTier, type ModelPrice } from '@brandq/ledger';
import { ModelPrices } from '@brandq/llm';
import { defaultRecipe, loadRecipeFile, type Recipe } from '@brandq/recipe';
import { createRedis, pings, redactUrl, startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, waitForExit, type SpawnedProcess } from '@brandq/testing/processes';
import { DEMO_LIMITS } from './demo-limits.js';

const WORKERS = 3;
/** The model the demo's workers call (the fake serves it at every tier). */
const MODEL = 'gpt-4o-mini';
/**
 * OpenAI answers a batch within 24 hours; the fake completes one this long after it is
 * submitted, and the workers' coordinator gathers and polls every second or two, so a
 * batch-tier demo takes seconds more than a standard one, not a day.
 */
const FAKE_BATCH_DELAY_MS = 3_000;
const BATCH_GATHER_SECONDS = '2';
const BATCH_POLL_SECONDS = '1';
/** A hang guard, not an expectation: the multi-step sample takes about a minute, longer on a busy machine. */
const FOLLOW_TIMEOUT_MS = 600_000;
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const sample = join(repoRoot, 'apps/demo/data/brands.csv');
const outDir = join(repoRoot, 'out');

const USAGE = `Usage: pnpm demo [--recipe <file>] [--llm-tier <${LLM_TIERS.join('|')}>]

The whole brandq job on local fakes (no API keys): Redis, fake OpenAI and Tavily, ${WORKERS} worker
processes, the sample in apps/demo/data/brands.csv, live progress, the export to out/<run>.csv,
the cost summary per recipe step and what the LLM tier saved against the standard price.
Stops everything it started.

Options:
  --recipe <file>    the enrichment to run, a recipe file (.yaml or .json), e.g.
                     recipes/brand-profile.yaml (default: recipes/brand-facts.yaml)
  --llm-tier <tier>  how the LLM steps are served and billed (a recipe step's own tier wins):
                     standard (default), flex (OpenAI's Flex processing) or batch (OpenAI's
                     Batch API), both at half the standard price. The fake OpenAI plays both;
                     its batches complete ${FAKE_BATCH_DELAY_MS / 1000} s after they are submitted (OpenAI: within 24 h).
  -h, --help         show this help
`;

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** A usage mistake: the demo prints it with the usage and exits 2, as the brandq CLI does. */
class DemoUsageError extends Error {}

interface DemoArgs {
  help: boolean;
  /** A path from the current directory. */
  recipe?: string;
  /** Absent: the run's tier is left to brandq's default (standard). */
  llmTier?: LlmTier;
}

/** The command line: `--recipe <file>`, `--llm-tier <tier>`, or `--help`. */
function readArgs(argv: string[]): DemoArgs {
  let values: { recipe?: string | undefined; 'llm-tier'?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { recipe: { type: 'string' }, 'llm-tier': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new DemoUsageError(error instanceof Error ? error.message : String(error));
  }
  const args: DemoArgs = { help: values.help === true };
  if (values.recipe !== undefined) args.recipe = resolve(values.recipe);
  if (values['llm-tier'] !== undefined) args.llmTier = llmTierOf(values['llm-tier']);
  return args;
}

/** `--llm-tier`'s value, read as the brandq CLI reads it (case and spaces aside). */
function llmTierOf(value: string): LlmTier {
  const tier = LLM_TIERS.find((t) => t === value.trim().toLowerCase());
  if (!tier) throw new DemoUsageError(`--llm-tier must be one of ${LLM_TIERS.join(', ')}, got "${value}"`);
  return tier;
}

/** Redis from REDIS_URL when it answers, else a throwaway redis-server we own. */
async function resolveRedis(): Promise<{ url: string; owned?: RedisServerHandle }> {
  const given = process.env.REDIS_URL;
  if (given && (await pings(given, 1500))) {
    say(`redis: using ${redactUrl(given)}`);
    return { url: given };
  }
  if (given) say(`redis: ${redactUrl(given)} does not answer; starting a throwaway redis-server`);
  const owned = await startRedisServer();
  say(`redis: started a throwaway redis-server on ${owned.url}`);
  return { url: owned.url, owned };
}

async function main(argv: string[]): Promise<number> {
  const args = readArgs(argv);
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // Read (and checked) before anything starts: a recipe with a problem costs no Redis, no workers.
  const recipe: Recipe = args.recipe ? await loadRecipeFile(args.recipe) : defaultRecipe();
  const started = Date.now();
  say(`recipe: ${recipe.name} (steps: ${recipe.steps.map((s) => `${s.id} (${s.type})`).join(', ')})`);
  say(`LLM tier: ${args.llmTier ?? 'standard'}`);
  await mkdir(outDir, { recursive: true });
  const redis = await resolveRedis();
  const fakes = await startFakes({
    openai: { latencyMs: { min: 80, max: 300 }, seed: 7, batchDelayMs: FAKE_BATCH_DELAY_MS },
    tavily: { latencyMs: { min: 40, max: 150 }, seed: 11 },
    sheets: {},
  });
  say(`fakes: OpenAI-compatible ${fakes.openai.url}, Tavily ${fakes.tavily.url}`);

  const env = {
    REDIS_URL: redis.url,
    OPENAI_BASE_URL: fakes.openai.url,
    OPENAI_API_KEY: 'sk-demo-local-fake',
    OPENAI_MODEL: MODEL,
    TAVILY_BASE_URL: fakes.tavily.url,
    TAVILY_API_KEY: 'tvly-demo-local-fake',
    GOOGLE_SHEETS_ROOT_URL: fakes.sheets.url,
    GOOGLE_SHEETS_ACCESS_TOKEN: 'demo',
    ...DEMO_LIMITS,
    // Set whatever the tier: a recipe step may ask for flex or batch on its own.
    // Real OpenAI has no Flex for gpt-4o-mini; the fake does, so the demo can show the tier.
    LLM_FLEX_MODELS: MODEL,
    BATCH_GATHER_SECONDS,
    BATCH_POLL_SECONDS,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
  };
  const workers: SpawnedProcess[] = [];
  const runId = `demo-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
  try {
    for (let i = 0; i < WORKERS; i++) workers.push(spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], env));
    say(`workers: started ${WORKERS} worker processes (pids ${workers.map((w) => w.child.pid).join(', ')})`);

    const recipeFlag = args.recipe ? ['--recipe', args.recipe] : [];
    const tierFlag = args.llmTier ? ['--llm-tier', args.llmTier] : [];
    const enqueue = spawnTs('apps/producer/src/enqueue.ts', ['--csv', sample, '--run', runId, ...recipeFlag, ...tierFlag, '--follow'], env, 'inherit');
    const code = await waitForExit(enqueue, FOLLOW_TIMEOUT_MS);
    if (code !== 0) throw new Error(`enqueue exited with ${code}`);

    const out = join(outDir, `${runId}.csv`);
    const exported = spawnTs('apps/producer/src/export.ts', ['--run', runId, '--out', out], env, 'inherit');
    if ((await waitForExit(exported, 30_000)) !== 0) throw new Error('export failed');

    const client = createRedis(redis.url, 'client');
    const runs = new RunStore(client);
    const [run, runRecipe, snapshot] = await Promise.all([runs.getRun(runId), runs.getRecipe(runId), new CostLedger(client).snapshot(runId)]);
    client.disconnect();
    // The workers' own price table (LLM_PRICING over the built-in prices, .env included).
    const config = loadConfig(readEnv({ ...process.env, ...env }));
    const prices = new ModelPrices({ baseURL: fakes.openai.url, apiKey: env.OPENAI_API_KEY, table: config.LLM_PRICING });
    const llmSteps = await llmStepCosts(runRecipe, args.llmTier ?? 'standard', snapshot, (model) => prices.priceOf(model));
    const openaiLedger = fakes.openai.ledger;
    const batchLines = openaiLedger.filter((e) => e.batchId !== undefined).length;
    const llmRequests = openaiLedger.length - batchLines;
    const batches = openaiLedger.batches().length;
    const searchCalls = fakes.tavily.ledger.entries().length;
    // The header as written: the export's columns are the run's recipe's fields.
    const header = (await readFile(out, 'utf8')).replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
    say('');
    say('[DEMO SUMMARY]');
    say(`  recipe: ${runRecipe.name}`);
    say(`  brands: ${run?.total ?? 0} (done ${run?.succeeded ?? 0}, failed ${run?.failed ?? 0}, rows skipped ${run?.skipped ?? 0})`);
    const batchNote = batches > 0 ? ` (file and batch requests included; ${batches} batches ran ${batchLines} requests)` : '';
    say(`  API calls received by the fakes: LLM ${llmRequests}${batchNote}, Tavily ${searchCalls}`);
    say(`  LLM tier: ${args.llmTier ?? 'standard'}`);
    for (const line of tierSavingLines(llmSteps, openaiLedger, snapshot.providers.llm.costMicros)) say(`  ${line}`);
    say(`  results: ${out}`);
    say(`  columns: ${header}`);
    say(`  elapsed: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // The cost summary per provider and per step was printed by the follow above.
    return run && run.succeeded + run.failed === run.total ? 0 : 1;
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => waitForExit(w, 30_000).catch(() => w.kill('SIGKILL'))));
    await fakes.close();
    await redis.owned?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof DemoUsageError) {
      process.stderr.write(`error: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);

/** What one LLM step of the run booked, and the same calls at its model's standard price. */
interface LlmStepCost {
  id: string;
  tier: LlmTier;
  model: string;
  bookedMicros: number;
  standardMicros: number;
}

/**
 * The saving is worked out from brandq's own ledger, as a user of the real OpenAI would see
 * it: each LLM step's booked tokens at its model's standard price, minus what the step booked.
 * A standard step saved nothing by definition (repricing its summed tokens would only show
 * per-call rounding); a flex step's calls that fell back to standard are in both figures.
 */
async function llmStepCosts(recipe: Recipe, runTier: LlmTier, snapshot: LedgerSnapshot, priceOf: (model: string) => Promise<ModelPrice>): Promise<LlmStepCost[]> {
  const costs: LlmStepCost[] = [];
  for (const step of recipe.steps) {
    if (step.type !== 'llm') continue;
    const booked = snapshot.steps[step.id];
    if (!booked) continue;
    const tier = step.tier ?? runTier;
    const model = step.model ?? MODEL;
    const standardMicros = tier === 'standard' ? booked.costMicros : llmCostMicros(tierPrice(await priceOf(model), 'standard'), booked.inputTokens, booked.outputTokens);
    costs.push({ id: step.id, tier, model, bookedMicros: booked.costMicros, standardMicros });
  }
  return costs;
}

/** To the micro-dollar, the ledger's unit: the demo's LLM bill is about a cent, and the saving half of it. */
const usd6 = (micros: number) => `$${microsToUsd(micros).toFixed(6)}`;

/** The LLM bill against the standard price, per step, and the fake OpenAI's own bills per tier to check brandq's ledger against. */
function tierSavingLines(steps: readonly LlmStepCost[], openaiLedger: Ledger, ledgerLlmMicros: number): string[] {
  const booked = steps.reduce((sum, s) => sum + s.bookedMicros, 0);
  const standard = steps.reduce((sum, s) => sum + s.standardMicros, 0);
  const saved = standard - booked;
  const share = standard > 0 ? ` (${((100 * saved) / standard).toFixed(1)}%)` : '';
  const lines = [
    `LLM booked: ${usd6(booked)}; at the standard price: ${usd6(standard)}; saved ${usd6(saved)}${share}`,
    ...steps.map((s) => `  - ${s.id} (${s.model}, ${s.tier}): booked ${usd6(s.bookedMicros)}, standard ${usd6(s.standardMicros)}`),
  ];
  const billed = Object.entries(openaiLedger.tierTotals())
    .filter(([, t]) => t.paidCalls > 0)
    .map(([tier, t]) => `${tier} ${usd6(t.billedMicros)} for ${t.paidCalls} calls`);
  const fakeBilled = openaiLedger.billedMicros();
  const check = fakeBilled === ledgerLlmMicros ? "equal to brandq's ledger" : `brandq's ledger booked ${usd6(ledgerLlmMicros)}`;
  lines.push(`the fake OpenAI billed ${usd6(fakeBilled)}${billed.length > 0 ? ` (${billed.join('; ')})` : ''}: ${check}`);
  return lines;
}
