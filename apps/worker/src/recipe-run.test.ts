import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedAnswer, expectedSearchResults, type Fakes, type LedgerEntry } from '@brandq/fakes';
import { parseCsvBrands, toCsv, type BrandInput } from '@brandq/input';
import { CostLedger, type StepTotals } from '@brandq/ledger';
import {
  fieldText,
  loadRecipeFile,
  parseAnswer,
  recipeFingerprint,
  renderMessages,
  renderQuery,
  responseFormatOf,
  resultFields,
  shouldSkip,
  shownUrls,
  type FieldValue,
  type Recipe,
  type TemplateContext,
} from '@brandq/recipe';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { enqueue, producerCli, startOpenFakes, startWorkers, stopWorkers, waitForRun, workerEnv } from './test-support.js';

const redis = useTestRedis();
const PROFILE = fileURLToPath(new URL('../../../recipes/brand-profile.yaml', import.meta.url));
const FACTS = fileURLToPath(new URL('../../../recipes/brand-facts.yaml', import.meta.url));
const RUN = 'recipe-run';
const BRANDS = Array.from({ length: 20 }, (_, i) => `Recipe Brand ${String(i + 1).padStart(2, '0')}`);
/** The input already says their segment and audience: brand-profile's `market` search is skipped for them. */
const MARKET_KNOWN = new Set(BRANDS.slice(0, 6));
/** Only a segment: skip_if needs every value it names, so these still search their market. */
const SEGMENT_ONLY = new Set(BRANDS.slice(6, 8));
/** TAVILY_MAX_RESULTS at its default, for the search step that leaves max_results to the worker. */
const WORKER_MAX_RESULTS = 5;

const CSV_TEXT = [
  'brand,country,segment,audience',
  ...BRANDS.map((b, i) => `${b},${i % 2 === 0 ? 'US' : 'FR'},${MARKET_KNOWN.has(b) || SEGMENT_ONLY.has(b) ? 'premium' : ''},${MARKET_KNOWN.has(b) ? 'young adults' : ''}`),
].join('\n');

let fakes: Fakes;
let dir: string;
let csv: string;
let env: Record<string, string>;
let recipe: Recipe;
const workers: SpawnedProcess[] = [];

beforeAll(async () => {
  fakes = await startOpenFakes({
    openai: { latencyMs: { min: 5, max: 30 }, seed: 5 },
    // knownBrands: the market query ("<brand> <category> price range ...") is attributed to its brand too.
    tavily: { latencyMs: { min: 5, max: 20 }, seed: 6, knownBrands: BRANDS },
  });
  dir = await mkdtemp(join(tmpdir(), 'brandq-recipe-'));
  csv = join(dir, 'brands.csv');
  await writeFile(csv, `${CSV_TEXT}\n`);
  // The shipped 30 s job lock: no worker is killed here, and a loaded machine must not make a job look stalled.
  env = workerEnv(fakes, redis.url, { JOB_LOCK_SECONDS: '30' });
  recipe = await loadRecipeFile(PROFILE);
});

afterAll(async () => {
  await stopWorkers(workers);
  await fakes?.close();
});

/**
 * What brandq must make of one brand, from the fakes' ground truth and the recipe's own rules:
 * the queries the fake Tavily must receive (each with its step id) and the fields of the fake
 * LLM's answers once the recipe has checked them.
 */
function expectedBrand(brand: BrandInput): { stepOfQuery: Map<string, string>; fields: Record<string, FieldValue> } {
  const ctx: TemplateContext & { results: Record<string, ReturnType<typeof expectedSearchResults>>; fields: Record<string, FieldValue> } = {
    brand: brand.name,
    hints: brand.hints as Record<string, string>,
    results: {},
    fields: {},
  };
  const stepOfQuery = new Map<string, string>();
  for (const step of recipe.steps) {
    if (shouldSkip(step, ctx)) continue;
    if (step.type === 'search') {
      const query = renderQuery(step, ctx);
      stepOfQuery.set(query, step.id);
      ctx.results[step.id] = expectedSearchResults(query, { knownBrands: BRANDS, maxResults: step.maxResults ?? WORKER_MAX_RESULTS });
    } else {
      const answer = parseAnswer(step, expectedAnswer(responseFormatOf(step).json_schema.schema, renderMessages(step, ctx)), shownUrls(step, ctx));
      if (!answer.ok) throw new Error(`the fake's answer to ${step.id} for ${brand.name} does not pass the recipe: ${answer.message}`);
      Object.assign(ctx.fields, answer.values);
    }
  }
  return { stepOfQuery, fields: ctx.fields };
}

/** Calls, cost and usage of some billed entries, as the ledger counts a step's paid calls. */
function paidTotalsOf(entries: readonly LedgerEntry[]): Omit<StepTotals, 'cached' | 'savedMicros'> {
  const sum = (pick: (e: LedgerEntry) => number | undefined) => entries.reduce((n, e) => n + (pick(e) ?? 0), 0);
  return {
    calls: entries.length,
    costMicros: sum((e) => e.costMicros),
    inputTokens: sum((e) => e.promptTokens),
    outputTokens: sum((e) => e.completionTokens),
    credits: sum((e) => e.credits),
  };
}

/** A fake's requests by the brand it attributed them to, each brand's in arrival order. */
function byBrand(entries: readonly LedgerEntry[]): Map<string, LedgerEntry[]> {
  const grouped = new Map<string, LedgerEntry[]>();
  for (const e of [...entries].sort((a, b) => a.at - b.at || a.id - b.id)) {
    const brand = e.brand ?? '(no brand)';
    grouped.set(brand, [...(grouped.get(brand) ?? []), e]);
  }
  return grouped;
}

describe('a run of recipes/brand-profile.yaml: producer CLI + two worker processes + fakes + Redis', () => {
  it('stores the recipe with the run: another recipe for the same run is refused, naming both, and --resume keeps the stored one', async () => {
    const created = await enqueue(['--csv', csv, '--run', RUN, '--recipe', PROFILE], env);
    expect(created.output()).toContain(`run ${RUN}: 20 brands enqueued`);

    // Side by side (each is a process start): the refusals change nothing the resume reads.
    const refusals = [
      ['--csv', csv, '--run', RUN, '--recipe', FACTS],
      ['--resume', '--run', RUN, '--recipe', FACTS],
    ].map((args) => spawnTs('apps/producer/src/enqueue.ts', [...args, '--no-follow'], env));
    const resumed = await enqueue(['--resume', '--run', RUN], env);
    for (const refused of refusals) {
      expect(await waitForExit(refused, 60_000), refused.output()).toBe(1);
      expect(refused.output()).toMatch(/error: run recipe-run follows recipe "brand-profile", not .*\("brand-facts"\)/);
      expect(refused.output()).toContain('--force');
    }
    expect(resumed.output()).toContain(`resuming run ${RUN}: processed 0/20`);
    const client = createRedis(redis.url);
    const runs = new RunStore(client);
    expect(recipeFingerprint(await runs.getRecipe(RUN))).toBe(recipeFingerprint(recipe));
    expect(await runs.getRun(RUN)).toMatchObject({ total: 20, recipeName: 'brand-profile' });
    client.disconnect();
    // Nothing was sent to a provider yet: no worker has started.
    expect(fakes.openai.ledger.length + fakes.tavily.ledger.length).toBe(0);
  });

  it('pays each provider once per brand and step the recipe runs, leaves out the searches skip_if skips, and books per step what the fakes billed', async () => {
    workers.push(...startWorkers(2, env, 6));
    const client = createRedis(redis.url);
    const run = await waitForRun(new RunStore(client), RUN, (r) => r.status !== 'running', 50_000);
    expect(run).toMatchObject({ status: 'completed', total: 20, succeeded: 20, failed: 0 });

    const brands = parseCsvBrands(CSV_TEXT).brands;
    const expected = new Map(brands.map((b) => [b.name, expectedBrand(b)]));
    // Every request was a billed call: no retry, no repair, nothing refused.
    expect(fakes.tavily.ledger.filter((e) => !e.billed)).toEqual([]);
    expect(fakes.openai.ledger.filter((e) => !e.billed)).toEqual([]);

    // Searches: each one is the query its step renders for its brand; `market` is skipped
    // exactly for the brands whose input has both a segment and an audience.
    const searchSteps = new Map<string, LedgerEntry[]>();
    const stepsSearched = new Map<string, string[]>();
    for (const [brand, entries] of byBrand(fakes.tavily.ledger.entries())) {
      const steps = entries.map((e) => expected.get(brand)?.stepOfQuery.get(e.query ?? '') ?? `unexpected query "${e.query}"`);
      stepsSearched.set(brand, steps);
      entries.forEach((e, i) => searchSteps.set(steps[i]!, [...(searchSteps.get(steps[i]!) ?? []), e]));
    }
    expect(stepsSearched).toEqual(new Map(BRANDS.map((b) => [b, MARKET_KNOWN.has(b) ? ['search'] : ['search', 'market']])));

    // LLM calls: the fake's ledger does not record which schema a call answered, so a brand's
    // two calls are told apart by order (classify reads the answer of facts, so it is sent
    // after facts answered) and each step's schema is witnessed by its billed schema tokens.
    const llmSteps = new Map<string, LedgerEntry[]>([['facts', []], ['classify', []]]);
    for (const [brand, entries] of byBrand(fakes.openai.ledger.entries())) {
      expect(entries, brand).toHaveLength(2);
      const [facts, classify] = entries as [LedgerEntry, LedgerEntry];
      expect(classify.at, brand).toBeGreaterThanOrEqual(facts.completedAt ?? Infinity);
      llmSteps.get('facts')?.push(facts);
      llmSteps.get('classify')?.push(classify);
    }
    expect([...byBrand(fakes.openai.ledger.entries()).keys()].sort()).toEqual(BRANDS);
    const schemaTokens = (step: string) => new Set(llmSteps.get(step)?.map((e) => e.schemaTokens));
    expect(schemaTokens('facts').size).toBe(1);
    expect(schemaTokens('classify').size).toBe(1);
    expect([...schemaTokens('facts')]).not.toEqual([...schemaTokens('classify')]);

    // The run's books per step equal the providers' bills per step, to the micro-dollar and token.
    const money = await new CostLedger(client).snapshot(RUN);
    // (Cache hits are left out: a job taken over after a stall finds the answers its first
    // attempt paid for in the cache, which is saved money, not a call.)
    expect(Object.keys(money.steps).sort()).toEqual(['classify', 'facts', 'market', 'search']);
    expect(money.steps).toMatchObject({
      search: paidTotalsOf(searchSteps.get('search') ?? []),
      facts: paidTotalsOf(llmSteps.get('facts') ?? []),
      market: paidTotalsOf(searchSteps.get('market') ?? []),
      classify: paidTotalsOf(llmSteps.get('classify') ?? []),
    });
    expect(money.steps).toMatchObject({ search: { calls: 20 }, facts: { calls: 20 }, market: { calls: 14 }, classify: { calls: 20 } });
    expect(money.spentMicros).toBe(fakes.tavily.ledger.billedMicros() + fakes.openai.ledger.billedMicros());
    client.disconnect();
  });

  it('exports row, brand, status, the recipe\'s fields in order, reason, holding what the fake LLM answered', async () => {
    const out = join(dir, 'profile.csv');
    expect(await producerCli('export', ['--run', RUN, '--out', out], env)).toContain(`wrote 20 rows to ${out}`);
    const text = await readFile(out, 'utf8');
    expect(text.startsWith('\uFEFF')).toBe(true);
    const [header, ...rows] = text.slice(1).split('\r\n').filter(Boolean);
    expect(header).toBe('row,brand,status,website,category,description,country,founded_year,sources,segment,audience,fit_score,rationale,evidence_urls,reason');

    const fields = resultFields(recipe);
    const columns = ['row', 'brand', 'status', ...fields.map((f) => f.name), 'reason'];
    const expectedRows = parseCsvBrands(CSV_TEXT).brands.map((b): Record<string, string | number> => {
      const answered = expectedBrand(b).fields;
      return { row: b.rowNumber, brand: b.name, status: 'success', ...Object.fromEntries(fields.map((f) => [f.name, fieldText(f, answered[f.name])])), reason: '' };
    });
    expect(rows).toEqual(toCsv(expectedRows, columns).split('\r\n').filter(Boolean).slice(1));
    // Not vacuous: the classification's own fields are filled in for every brand.
    expect(expectedRows.every((r) => r['segment'] !== '' && r['fit_score'] !== '')).toBe(true);
  });
});
