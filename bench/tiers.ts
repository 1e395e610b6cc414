/**
 * `pnpm bench:tiers`: cost per 1,000 brands and run time per LLM tier (issue 18) on the real
 * system against the fakes. For each recipe (BENCH_TIERS_RECIPES) and each variant below, a
 * clean throwaway redis-server, fresh fakes in this process, BENCH_TIERS_WORKERS worker
 * processes (apps/worker/src/main.ts) and one run of BENCH_TIERS_BRANDS brands created through
 * the run service at the variant's tier, caching off. Same brand names in every run, so every
 * run asks the same questions and the fake answers with the same tokens: the tiers differ
 * only in price and in how long they take.
 *
 *   standard     no service_tier
 *   flex         service_tier "flex"
 *   flex-short   flex with the fake refusing BENCH_TIERS_FLEX_SHORT_RATE (0.2) of flex requests
 *                for capacity (429 Resource Unavailable, not billed); --flex-fallback-after
 *                BENCH_TIERS_FLEX_FALLBACK_MS (2000): a brand refused that long goes standard
 *   batch        parked, sent as batch files by the fleet's coordinator; the fake completes a
 *                batch BENCH_TIERS_BATCH_DELAY_MS (3000) after it is created, the workers gather
 *                for BENCH_TIERS_GATHER_S (2) and poll every BENCH_TIERS_POLL_S (1) seconds
 *
 * Costs are scaled linearly to 1,000 brands (each brand makes the same calls); run times are
 * as measured for BENCH_TIERS_BRANDS brands, not scaled. The fake's Flex answers as fast as its
 * standard tier and its batches finish in seconds, where OpenAI's Flex is slower and a batch
 * takes up to 24 hours: the run times measure brandq's own machinery, not OpenAI's turnaround.
 *
 * Prints Markdown tables and writes bench/results/tiers.json.
 */
import { DEFAULT_PRICING } from '../packages/config/src/index.js';
import { llmCostMicros, microsToUsd, type LlmTier } from '../packages/ledger/src/index.js';
import { loadRecipeFile } from '../packages/recipe/src/index.js';
import { redisVersion } from './support/redis-info.js';
import { fixed, machine, note, out, pct, table, writeResult } from './support/report.js';
import { runAtTier, type TierRun, type TierRunSettings, type TierVariant } from './support/tier-runs.js';
import { createRedis, startRedisServer } from './support/workspace.js';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const RECIPES = (process.env.BENCH_TIERS_RECIPES ?? 'recipes/brand-facts.yaml,recipes/brand-profile.yaml').split(',');
const SETTINGS: TierRunSettings = {
  brands: num('BENCH_TIERS_BRANDS', 200),
  workers: num('BENCH_TIERS_WORKERS', 2),
  concurrency: num('BENCH_TIERS_CONCURRENCY', 6),
  batchDelayMs: num('BENCH_TIERS_BATCH_DELAY_MS', 3000),
  batchGatherSeconds: num('BENCH_TIERS_GATHER_S', 2),
  batchPollSeconds: num('BENCH_TIERS_POLL_S', 1),
  timeoutMs: num('BENCH_TIERS_TIMEOUT_S', 600) * 1000,
};
const VARIANTS: TierVariant[] = [
  { label: 'standard', tier: 'standard' },
  { label: 'flex', tier: 'flex' },
  { label: 'flex-short', tier: 'flex', flexUnavailableRate: num('BENCH_TIERS_FLEX_SHORT_RATE', 0.2), flexFallbackAfterMs: num('BENCH_TIERS_FLEX_FALLBACK_MS', 2000) },
  { label: 'batch', tier: 'batch' },
].filter((v) => (process.env.BENCH_TIERS_VARIANTS ?? 'standard,flex,flex-short,batch').split(',').includes(v.label)) as TierVariant[];
/** Other models' standard prices (brandq's built-in table) to reprice the measured tokens at. */
const REPRICED_MODELS = ['gpt-4.1-mini', 'gpt-4o'];

const PER = 1000;
const perThousand = (micros: number, brands: number) => (micros * PER) / brands;
const usd = (micros: number, digits = 4) => `$${microsToUsd(micros).toFixed(digits)}`;

/** A run's figures per 1,000 brands, in micro-dollars. */
function costsOf(r: TierRun) {
  const scale = (micros: number) => perThousand(micros, r.brands);
  const llmLedger = r.ledger.providers.llm.costMicros;
  const search = r.ledger.providers.tavily.costMicros;
  return {
    llmFakeBilled: scale(r.fakeLlmBilledMicros),
    llmLedger: scale(llmLedger),
    llmAtStandard: scale(r.fakeLlmAtStandardMicros),
    llmSaved: scale(r.fakeLlmAtStandardMicros - r.fakeLlmBilledMicros),
    search: scale(search),
    total: scale(r.ledger.spentMicros),
    llmShare: r.ledger.spentMicros > 0 ? llmLedger / r.ledger.spentMicros : Number.NaN,
    /** brandq's ledger less the fake's bill, whole run (0: to the micro-dollar). */
    ledgerMinusFakeMicros: llmLedger - r.fakeLlmBilledMicros,
  };
}

const paidByTier = (r: TierRun) =>
  (Object.entries(r.fakeByTier) as [LlmTier, { paidCalls: number }][])
    .filter(([, t]) => t.paidCalls > 0)
    .map(([tier, t]) => `${tier} ${t.paidCalls}`)
    .join(', ');

function costTable(results: readonly TierRun[]): string {
  return table(
    ['recipe', 'tier', 'LLM: fake billed', 'LLM: brandq ledger', 'ledger − fake (run)', 'LLM at standard', 'LLM saved', 'search', 'total', 'LLM share'],
    results.map((r) => {
      const c = costsOf(r);
      return [
        r.recipe,
        r.variant.label,
        usd(c.llmFakeBilled),
        usd(c.llmLedger),
        `${c.ledgerMinusFakeMicros} µ$`,
        usd(c.llmAtStandard),
        `${usd(c.llmSaved)} (${pct(c.llmAtStandard > 0 ? c.llmSaved / c.llmAtStandard : Number.NaN, 0)})`,
        usd(c.search, 2),
        usd(c.total, 2),
        pct(c.llmShare),
      ];
    }),
  );
}

function runTable(results: readonly TierRun[]): string {
  return table(
    ['recipe', 'tier', 'brands', 'ok / failed', 'run time', 'brands/s', 'LLM calls billed', 'flex refused', 'batches (lines)', 'sent twice / billed twice'],
    results.map((r) => [
      r.recipe,
      r.variant.label,
      String(r.brands),
      `${r.succeeded} / ${r.failed}`,
      `${fixed(r.seconds)} s`,
      fixed(r.succeeded / r.seconds, 2),
      paidByTier(r),
      String(r.flexRefusals),
      r.batches.length > 0 ? `${r.batches.length} (${r.batches.reduce((n, b) => n + b.lineCount, 0)})` : '-',
      `${r.batchCustomIdsInSeveralBatches} / ${r.batchCustomIdsBilledTwice}`,
    ]),
  );
}

/** The standard runs' tokens per 1,000 brands at other models' standard prices (computed, not measured); flex and batch halve it. */
function repricedTable(results: readonly TierRun[]): string {
  const standard = results.filter((r) => r.variant.label === 'standard');
  return table(
    ['recipe', 'tokens per 1,000 brands (in / out)', ...REPRICED_MODELS.map((m) => `${m} standard`), ...REPRICED_MODELS.map((m) => `${m} flex/batch`), 'search'],
    standard.map((r) => {
      const llm = r.ledger.providers.llm;
      const input = perThousand(llm.inputTokens, r.brands);
      const output = perThousand(llm.outputTokens, r.brands);
      const at = (model: string, factor: number) => {
        const price = DEFAULT_PRICING[model]!;
        return usd(llmCostMicros({ inputPerMillion: price.inputPerMillion * factor, outputPerMillion: price.outputPerMillion * factor }, input, output), 2);
      };
      return [
        r.recipe,
        `${Math.round(input).toLocaleString('en-US')} / ${Math.round(output).toLocaleString('en-US')}`,
        ...REPRICED_MODELS.map((m) => at(m, 1)),
        ...REPRICED_MODELS.map((m) => at(m, 0.5)),
        usd(perThousand(r.ledger.providers.tavily.costMicros, r.brands), 2),
      ];
    }),
  );
}

async function main(): Promise<void> {
  const started = Date.now();
  const server = await startRedisServer();
  const admin = createRedis(server.url, 'client');
  const results: TierRun[] = [];
  try {
    for (const path of RECIPES) {
      const recipe = await loadRecipeFile(path);
      for (const variant of VARIANTS) {
        note(`${recipe.name} / ${variant.label}: ${SETTINGS.brands} brands...`);
        const result = await runAtTier(admin, server.url, recipe, variant, SETTINGS);
        note(`  ${fixed(result.seconds)} s, ${result.succeeded} ok, ${result.failed} failed, LLM billed ${usd(result.fakeLlmBilledMicros, 6)} (ledger ${usd(result.ledger.providers.llm.costMicros, 6)})`);
        results.push(result);
      }
    }
    const redis = await redisVersion(admin);
    out(`## Cost per tier: ${SETTINGS.brands} brands per run, scaled to 1,000; gpt-4o-mini on the fakes`);
    out();
    out(`${SETTINGS.workers} workers x ${SETTINGS.concurrency} jobs; fake batch delay ${SETTINGS.batchDelayMs} ms, BATCH_GATHER_SECONDS=${SETTINGS.batchGatherSeconds}, BATCH_POLL_SECONDS=${SETTINGS.batchPollSeconds}; Redis ${redis}.`);
    out();
    out('#### Cost per 1,000 brands (USD)');
    out();
    out(costTable(results));
    out();
    out('#### Run time and calls');
    out();
    out(runTable(results));
    out();
    out('#### The measured tokens at other models\' standard prices (computed; flex and batch halve the LLM part)');
    out();
    out(repricedTable(results));
    out();
    const path = writeResult('tiers', {
      machine: { ...machine(), redis },
      settings: { ...SETTINGS, recipes: RECIPES, variants: VARIANTS, model: 'gpt-4o-mini' },
      seconds: (Date.now() - started) / 1000,
      runs: results.map((r) => ({ ...r, perThousandBrandsMicros: costsOf(r) })),
    });
    note(`wrote ${path} (${fixed((Date.now() - started) / 1000)} s in all)`);
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:tiers failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
