import { describe, expect, it } from 'vitest';
import type { BrandJobData } from '@brandq/queue';
import { runIndexKeys, runKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { defaultRecipe, parseRecipe, recipeFingerprint } from '@brandq/recipe';
import { RunStore, type RunWritten } from './run-store.js';
import type { BrandResult } from './run-types.js';

const redis = useTestRedis();

const source = { type: 'csv' as const, path: '/tmp/brands.csv' };
const brand = (runId: string, key: string, rowNumber: number): BrandJobData => ({ runId, key, name: key.toUpperCase(), rowNumber, hints: {}, source });
const fields: BrandResult['fields'] = { website: 'https://a.example.com/', category: 'shoes', description: 'd', country: 'US', founded_year: 1964, sources: [] };

/** The run as written; a run of another source fails the test here. */
async function written(pending: ReturnType<RunStore['createOrExtendRun']>): Promise<RunWritten> {
  const answer = await pending;
  if (answer.kind !== 'written') throw new Error(`run not written: ${JSON.stringify(answer)}`);
  return answer;
}

async function newRun(store: RunStore, id: string, n: number) {
  return written(store.createOrExtendRun({
    id,
    source,
    sourceKey: 'csv:/tmp/brands.csv',
    brands: Array.from({ length: n }, (_, i) => brand(id, `b${i}`, i + 2)),
    skipped: [{ rowNumber: 9, reason: 'empty_name', message: 'row 9: empty brand name' }],
  }));
}

describe('RunStore', () => {
  it('creates a run with its brands, skipped rows and an index by source', async () => {
    const store = new RunStore(redis.client());
    const { meta: run, created } = await newRun(store, 'run-a', 3);
    expect(created).toBe(true);
    expect(run).toMatchObject({ id: 'run-a', status: 'running', total: 3, succeeded: 0, failed: 0, skipped: 1 });
    expect(await store.latestRunForSource('csv:/tmp/brands.csv')).toBe('run-a');
    const brands = [];
    for await (const b of store.brands('run-a')) brands.push(b.key);
    expect(brands.sort()).toEqual(['b0', 'b1', 'b2']);
  });

  it('records each brand once, moves a retried failure to success, and completes the run', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-b', 2);
    const ok = { runId: 'run-b', key: 'b0', brand: 'B0', rowNumber: 2, processedAt: 'now', fields };
    expect(await store.recordSuccess(ok)).toMatchObject({ recorded: true, succeeded: 1, status: 'running' });
    // A duplicate delivery after a crash changes nothing.
    expect(await store.recordSuccess(ok)).toMatchObject({ recorded: false, succeeded: 1 });
    const failure = { runId: 'run-b', key: 'b1', brand: 'B1', rowNumber: 3, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' };
    expect(await store.recordFailure(failure)).toMatchObject({ recorded: true, failed: 1, status: 'completed' });
    expect(await store.recordFailure({ ...failure, key: 'b0' })).toMatchObject({ recorded: false, succeeded: 1, failed: 1 });
    expect(await store.recordSuccess({ ...ok, key: 'b1', brand: 'B1' })).toMatchObject({ recorded: true, succeeded: 2, failed: 0 });
    const failures = [];
    for await (const f of store.failures('run-b')) failures.push(f);
    expect(failures).toEqual([]);
    expect((await store.getRun('run-b'))?.finishedAt).toBeGreaterThan(0);
  });

  it('keeps a held status (budget, pause) instead of completing over it', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-c', 1);
    await store.setStatus('run-c', 'budget_exhausted', 'budget reached');
    await store.recordSuccess({ runId: 'run-c', key: 'b0', brand: 'B0', rowNumber: 2, processedAt: 'now', fields });
    expect(await store.getRun('run-c')).toMatchObject({ status: 'budget_exhausted', statusReason: 'budget reached' });
  });

  it('resumes a held run to running while brands are open, and to completed when none are left', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-d', 2);
    const ok = { runId: 'run-d', key: 'b0', brand: 'B0', rowNumber: 2, processedAt: 'now', fields };
    await store.recordSuccess(ok);
    await store.setStatus('run-d', 'paused', 'quota');
    expect(await store.reopen('run-d', [])).toEqual({ reopened: 0, status: 'running' });

    // The last brand finishes while the run is held; a resume afterwards has nothing left to wait for.
    await store.setStatus('run-d', 'budget_exhausted', 'budget reached');
    await store.recordSuccess({ ...ok, key: 'b1', brand: 'B1' });
    expect(await store.reopen('run-d', [])).toEqual({ reopened: 0, status: 'completed' });
    expect(await store.getRun('run-d')).toMatchObject({ status: 'completed', succeeded: 2 });
    expect((await store.getRun('run-d'))?.statusReason).toBeUndefined();
    expect((await store.getRun('run-d'))?.finishedAt).toBeGreaterThan(0);
  });

  it('reopens failed brands for --retry-failed, and resuming a completed run twice keeps it completed', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-e', 1);
    const failure = { runId: 'run-e', key: 'b0', brand: 'B0', rowNumber: 2, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' };
    expect(await store.recordFailure(failure)).toMatchObject({ status: 'completed' });
    expect(await store.reopen('run-e', [])).toEqual({ reopened: 0, status: 'completed' });
    expect(await store.reopen('run-e', ['b0'])).toEqual({ reopened: 1, status: 'running' });
    expect(await store.getRun('run-e')).toMatchObject({ status: 'running', failed: 0 });
    expect((await store.getRun('run-e'))?.finishedAt).toBeUndefined();
  });
});

const success = (runId: string, key: string) => ({ runId, key, brand: key.toUpperCase(), rowNumber: 2, processedAt: 'now', fields });
const runOfBrandsCsv = (id: string, keys: string[]) => ({ id, source, sourceKey: 'csv:/tmp/brands.csv', brands: keys.map((k, i) => brand(id, k, i + 2)), skipped: [] });

describe('RunStore: a run tells the truth about its brands', () => {
  it('extends an existing run: new brands join its brands and its total, known brands are not counted twice', async () => {
    const store = new RunStore(redis.client());
    await store.createOrExtendRun(runOfBrandsCsv('run-x', ['a', 'b']));
    const extended = await written(store.createOrExtendRun(runOfBrandsCsv('run-x', ['b', 'c', 'd'])));
    expect(extended).toMatchObject({ created: false, added: 2, meta: { total: 4, status: 'running' } });
    const keys = [];
    for await (const b of store.brands('run-x')) keys.push(b.key);
    expect(keys.sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('takes a completed run back to running when it gains open brands, and completes it when they are done', async () => {
    const store = new RunStore(redis.client());
    await store.createOrExtendRun(runOfBrandsCsv('run-y', ['a']));
    expect(await store.recordSuccess(success('run-y', 'a'))).toMatchObject({ status: 'completed' });
    const extended = await written(store.createOrExtendRun(runOfBrandsCsv('run-y', ['a', 'b'])));
    expect(extended.meta).toMatchObject({ status: 'running', total: 2, succeeded: 1 });
    expect(extended.meta.finishedAt).toBeUndefined();
    expect(await store.recordSuccess(success('run-y', 'b'))).toMatchObject({ status: 'completed', succeeded: 2 });
  });

  it('keeps a completed run completed when the list brings nothing new, and a held run held when it grows', async () => {
    const store = new RunStore(redis.client());
    await store.createOrExtendRun(runOfBrandsCsv('run-z', ['a']));
    await store.recordSuccess(success('run-z', 'a'));
    expect((await written(store.createOrExtendRun(runOfBrandsCsv('run-z', ['a'])))).meta).toMatchObject({ status: 'completed', total: 1 });

    await store.createOrExtendRun(runOfBrandsCsv('run-h', ['a']));
    await store.setStatus('run-h', 'paused', 'quota');
    expect((await written(store.createOrExtendRun(runOfBrandsCsv('run-h', ['a', 'b'])))).meta).toMatchObject({ status: 'paused', total: 2 });
  });

  it('two producers creating or extending the same run at once count the union, and the run completes when all are done', async () => {
    const clients = [redis.client(), redis.client(), redis.client()];
    const stores = clients.map((c) => new RunStore(c));
    const lists = [
      Array.from({ length: 300 }, (_, i) => `k${i}`),
      Array.from({ length: 300 }, (_, i) => `k${i + 150}`),
      Array.from({ length: 100 }, (_, i) => `k${i * 4}`),
    ];
    const writes = await Promise.all(stores.map((s, i) => written(s.createOrExtendRun(runOfBrandsCsv('run-race', lists[i] as string[])))));
    expect(writes.filter((w) => w.created)).toHaveLength(1);
    expect(writes.reduce((sum, w) => sum + w.added, 0)).toBe(450);
    const store = stores[0] as RunStore;
    expect(await store.getRun('run-race')).toMatchObject({ total: 450, status: 'running' });
    const union = [...new Set(lists.flat())];
    for (const key of union.slice(0, -1)) await store.recordSuccess(success('run-race', key));
    expect(await store.getRun('run-race')).toMatchObject({ status: 'running', succeeded: 449 });
    expect(await store.recordSuccess(success('run-race', union.at(-1) as string))).toMatchObject({ status: 'completed', succeeded: 450 });
  });

  it('refuses to extend a run with the brands of another source', async () => {
    const store = new RunStore(redis.client());
    await store.createOrExtendRun(runOfBrandsCsv('run-src', ['a']));
    expect(await store.createOrExtendRun({ ...runOfBrandsCsv('run-src', ['b']), sourceKey: 'csv:/tmp/other.csv' })).toEqual({ kind: 'other_source', runSourceKey: 'csv:/tmp/brands.csv' });
    expect(await store.getRun('run-src')).toMatchObject({ total: 1 });
  });
});

describe('RunStore: a run keeps the recipe it was created with', () => {
  const other = parseRecipe(
    ['name: tagline', 'steps:', '  - id: tag', '    type: llm', '    prompt: "Brand: {{brand}}"', '    fields:', '      - name: tagline', '        type: string', '        description: a tagline'].join('\n'),
    'tagline.yaml',
  );

  it('stores the recipe with the run, names it in the meta, and gives it back to workers', async () => {
    const store = new RunStore(redis.client());
    await written(store.createOrExtendRun({ ...runOfBrandsCsv('run-recipe', ['a']), recipe: other }));
    expect(await store.getRun('run-recipe')).toMatchObject({ recipeName: 'tagline', recipeFingerprint: recipeFingerprint(other) });
    expect(await store.getRecipe('run-recipe')).toEqual(other);
  });

  it('refuses to extend a run with another recipe, writing nothing, unless told to replace it', async () => {
    const store = new RunStore(redis.client());
    await written(store.createOrExtendRun(runOfBrandsCsv('run-recipe-2', ['a'])));
    expect(await store.createOrExtendRun({ ...runOfBrandsCsv('run-recipe-2', ['b']), recipe: other })).toEqual({
      kind: 'other_recipe',
      runRecipeName: 'brand-facts',
      runRecipeFingerprint: recipeFingerprint(defaultRecipe()),
    });
    expect(await store.getRun('run-recipe-2')).toMatchObject({ total: 1, recipeName: 'brand-facts' });
    await written(store.createOrExtendRun({ ...runOfBrandsCsv('run-recipe-2', ['b']), recipe: other, replaceRecipe: true }));
    expect(await store.getRun('run-recipe-2')).toMatchObject({ total: 2, recipeName: 'tagline' });
    expect(await store.getRecipe('run-recipe-2')).toEqual(other);
  });

  it('reads a run and its results written before recipes: the default recipe, the fields from the top level', async () => {
    const client = redis.client();
    const store = new RunStore(client);
    await written(store.createOrExtendRun(runOfBrandsCsv('run-legacy', ['a'])));
    await client.del(runKeys('run-legacy').recipe);
    await client.hdel(runKeys('run-legacy').meta, 'recipeName', 'recipeFingerprint');
    await client.hset(runKeys('run-legacy').results, 'a', JSON.stringify({ key: 'a', brand: 'A', rowNumber: 2, processedAt: 'then', ...fields }));
    expect(await store.getRecipe('run-legacy')).toEqual(defaultRecipe());
    expect(await store.getResult('run-legacy', 'a')).toEqual({ key: 'a', brand: 'A', rowNumber: 2, processedAt: 'then', fields });
    // It follows the default recipe: another one is refused unless forced, as for any run.
    expect(await store.createOrExtendRun({ ...runOfBrandsCsv('run-legacy', ['b']), recipe: other })).toMatchObject({ kind: 'other_recipe', runRecipeName: 'brand-facts' });
    expect(await store.createOrExtendRun(runOfBrandsCsv('run-legacy', ['b']))).toMatchObject({ kind: 'written' });
  });
});

describe('RunStore: every result of a source', () => {
  it('finds a brand processed in any run of the source, naming the newest run that holds it', async () => {
    const store = new RunStore(redis.client());
    const history = 'csv:/tmp/history.csv';
    const runOfHistory = (id: string, keys: string[]) => ({ ...runOfBrandsCsv(id, keys), sourceKey: history });
    await store.createOrExtendRun(runOfHistory('hist-1', ['a', 'b']));
    await store.recordSuccess(success('hist-1', 'a'));
    await store.createOrExtendRun(runOfHistory('hist-2', ['b', 'c']));
    await store.recordSuccess(success('hist-2', 'b'));
    await store.createOrExtendRun(runOfHistory('hist-3', ['c']));
    await store.recordFailure({ runId: 'hist-3', key: 'c', brand: 'C', rowNumber: 2, kind: 'transient', reason: 'HTTP 500', attempts: 4, failedAt: 'now' });
    await store.createOrExtendRun({ ...runOfBrandsCsv('hist-other', ['d']), sourceKey: 'csv:/tmp/other.csv' });
    await store.recordSuccess(success('hist-other', 'd'));

    expect(await store.latestRunForSource(history)).toBe('hist-3');
    expect(await store.runsOfSource(history)).toEqual(['hist-3', 'hist-2', 'hist-1']);
    const found = await store.resultsOfSource(history, ['a', 'b', 'c', 'd']);
    expect(Object.fromEntries(found)).toEqual({ a: 'hist-1', b: 'hist-2' });
  });
});

describe('RunStore: budget exhaustion is versioned by the budget epoch', () => {
  const ledgerKey = (runId: string) => runKeys(runId).ledger;

  it('holds a running run only under the budget epoch the refusal was computed with', async () => {
    const client = redis.client();
    const store = new RunStore(client);
    await newRun(store, 'run-epoch', 2);
    // No budget set yet: the epoch is 0.
    expect(await store.markBudgetExhausted('run-epoch', 1, 'stale')).toBe(false);
    expect(await store.markBudgetExhausted('run-epoch', 0, 'budget reached')).toBe(true);
    expect(await store.getRun('run-epoch')).toMatchObject({ status: 'budget_exhausted', statusReason: 'budget reached' });
    // Already held: a second refusal changes nothing.
    expect(await store.markBudgetExhausted('run-epoch', 0, 'again')).toBe(false);
    expect(await store.getRun('run-epoch')).toMatchObject({ statusReason: 'budget reached' });
  });

  it('a late refusal computed under the old budget never undoes a --resume --budget', async () => {
    const client = redis.client();
    const store = new RunStore(client);
    await newRun(store, 'run-late', 2);
    const epochOfRefusal = Number((await client.hget(ledgerKey('run-late'), 'budget_epoch')) ?? 0);
    // The resume: a new budget (bumping the epoch) before the run reopens.
    await client.hincrby(ledgerKey('run-late'), 'budget_epoch', 1);
    await store.reopen('run-late', []);
    expect(await store.markBudgetExhausted('run-late', epochOfRefusal, 'late refusal')).toBe(false);
    expect(await store.getRun('run-late')).toMatchObject({ status: 'running' });
  });

  it('never holds a completed or paused run', async () => {
    const store = new RunStore(redis.client());
    await newRun(store, 'run-done', 1);
    await store.recordSuccess(success('run-done', 'b0'));
    expect(await store.markBudgetExhausted('run-done', 0, 'late')).toBe(false);
    expect(await store.getRun('run-done')).toMatchObject({ status: 'completed' });
    await newRun(store, 'run-paused', 1);
    await store.setStatus('run-paused', 'paused', 'quota');
    expect(await store.markBudgetExhausted('run-paused', 0, 'late')).toBe(false);
    expect(await store.getRun('run-paused')).toMatchObject({ status: 'paused' });
  });
});

describe('RunStore: runs indexed before each source kept the list of its runs', () => {
  it('lists them from the index of all runs the first time the source is looked up', async () => {
    const client = redis.client();
    const store = new RunStore(client);
    const legacy = 'csv:/tmp/legacy.csv';
    await store.createOrExtendRun({ ...runOfBrandsCsv('legacy-1', ['a']), sourceKey: legacy });
    await store.recordSuccess(success('legacy-1', 'a'));
    await store.createOrExtendRun({ ...runOfBrandsCsv('legacy-2', ['b']), sourceKey: legacy });
    await client.del(runIndexKeys.ofSource(legacy));
    expect(await store.runsOfSource(legacy)).toEqual(['legacy-2', 'legacy-1']);
    expect(Object.fromEntries(await store.resultsOfSource(legacy, ['a', 'b']))).toEqual({ a: 'legacy-1' });
    expect(await store.runsOfSource('csv:/tmp/never.csv')).toEqual([]);
  });
});

