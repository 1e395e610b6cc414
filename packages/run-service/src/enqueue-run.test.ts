import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FairScheduler } from '@brandq/fair-share';
import { defaultRecipe, parseRecipe, recipeFingerprint } from '@brandq/recipe';
import { BadInputError } from '@brandq/errors';
import type { BrandInput } from '@brandq/input';
import { CostLedger } from '@brandq/ledger';
import { brandJobId, createBrandQueue, type BrandQueue } from '@brandq/queue';
import { RunStore } from '@brandq/runs';
// @brandq/testing is not a dependency of this package; its source is imported directly.
import { useTestRedis } from '@brandq/testing';
import { enqueueRun, type EnqueueRunInput } from './enqueue-run.js';
import type { LoadedSource } from './load-source.js';
import { skipAlreadyProcessed } from './skip-processed.js';

const redis = useTestRedis();
let queue: BrandQueue;
beforeAll(() => {
  queue = createBrandQueue(redis.client());
});
afterAll(() => queue.close());

const brandInput = (name: string, i: number): BrandInput => ({ key: name.toLowerCase(), name, rowNumber: i + 2, hints: {} }) as BrandInput;

/** A fresh load of a CSV source with these brand names (every producer run reads the source anew). */
function load(sourceKey: string, names: string[]): LoadedSource {
  return { source: { type: 'csv', path: `/tmp/${sourceKey}.csv` }, sourceKey, brands: names.map(brandInput), skipped: [] };
}

function input(runId: string, loaded: LoadedSource): EnqueueRunInput {
  return { runId, loaded, recipe: defaultRecipe(), budgetMicros: 0, attempts: 3, retention: { keepCompleted: 100, keepFailed: 100 } };
}

const deps = () => ({ runs: new RunStore(redis.client()), ledger: new CostLedger(redis.client()), queue, scheduler: new FairScheduler(redis.client(), queue) });

async function succeedAll(runs: RunStore, runId: string): Promise<void> {
  for await (const b of runs.brands(runId)) {
    await runs.recordSuccess({ runId, key: b.key, brand: b.name, rowNumber: b.rowNumber, processedAt: 'now', fields: {} });
  }
}

/** A producer run without --force: skip what the source already has, then enqueue. */
async function produce(runId: string, loaded: LoadedSource) {
  const d = deps();
  await skipAlreadyProcessed(d.runs, loaded, defaultRecipe());
  return enqueueRun(d, input(runId, loaded));
}

describe('repeat runs never pay twice', () => {
  it('a run whose brands all have results is not created, and a third run still skips them', async () => {
    const names = ['Acme', 'Globex', 'Initech'];
    const first = await produce('repeat-1', load('repeat', names));
    expect(first).toMatchObject({ kind: 'enqueued', enqueued: 3 });
    await succeedAll(deps().runs, 'repeat-1');

    const second = await produce('repeat-2', load('repeat', names));
    expect(second).toEqual({ kind: 'nothing_to_do', message: 'nothing to do: all 3 brands already have results in run repeat-1 (use --force to redo)' });
    expect(await deps().runs.getRun('repeat-2')).toBeUndefined();
    expect(await deps().runs.latestRunForSource('repeat')).toBe('repeat-1');

    const third = await produce('repeat-3', load('repeat', names));
    expect(third.kind).toBe('nothing_to_do');
    expect(await deps().runs.getRun('repeat-3')).toBeUndefined();
  });

  it('skips only brands answered by the same recipe: a result of another recipe answers other questions', async () => {
    const tagline = parseRecipe(
      ['name: tagline', 'steps:', '  - id: tag', '    type: llm', '    prompt: "Brand: {{brand}}"', '    fields: [{ name: tagline, type: string, description: a tagline }]'].join('\n'),
      'tagline.yaml',
    );
    await produce('recipes-1', load('recipes', ['Acme', 'Globex']));
    const runs = deps().runs;
    // Acme was answered by the default recipe; Globex by a recipe the run was switched to since.
    await runs.recordSuccess({ runId: 'recipes-1', key: 'acme', brand: 'Acme', rowNumber: 2, processedAt: 'now', fields: {}, recipe: recipeFingerprint(defaultRecipe()) });
    await runs.recordSuccess({ runId: 'recipes-1', key: 'globex', brand: 'Globex', rowNumber: 3, processedAt: 'now', fields: {}, recipe: recipeFingerprint(tagline) });

    const again = load('recipes', ['Acme', 'Globex']);
    await skipAlreadyProcessed(runs, again, defaultRecipe());
    expect(again.brands.map((b) => b.name)).toEqual(['Globex']);
    const withTagline = load('recipes', ['Acme', 'Globex']);
    await skipAlreadyProcessed(runs, withTagline, tagline);
    expect(withTagline.brands.map((b) => b.name)).toEqual(['Acme']);
  });

  it('skips against every earlier run of the source, not only the latest, and names the runs that hold the results', async () => {
    await produce('history-1', load('history', ['Acme', 'Globex']));
    await succeedAll(deps().runs, 'history-1');
    // A later run with only a new brand becomes the latest run of the source.
    await produce('history-2', load('history', ['Initech']));
    await succeedAll(deps().runs, 'history-2');

    const loaded = load('history', ['Acme', 'Globex', 'Initech', 'Umbrella']);
    const fourth = await produce('history-3', loaded);
    expect(fourth).toMatchObject({ kind: 'enqueued', enqueued: 1, run: { total: 1 } });
    expect(loaded.brands.map((b) => b.name)).toEqual(['Umbrella']);
    expect(loaded.skipped.map((s) => s.message)).toEqual([
      'row 2: "Acme" already has a result in run history-1 (use --force to reprocess)',
      'row 3: "Globex" already has a result in run history-1 (use --force to reprocess)',
      'row 4: "Initech" already has a result in run history-2 (use --force to reprocess)',
    ]);
    await succeedAll(deps().runs, 'history-3');
    const again = await produce('history-4', load('history', ['Acme', 'Globex', 'Initech', 'Umbrella']));
    expect(again).toEqual({ kind: 'nothing_to_do', message: 'nothing to do: all 4 brands already have results in runs history-3, history-2, history-1 (use --force to redo)' });
  });

  it('--force enqueues them again, and a source with no valid brand creates no run', async () => {
    await produce('forced-1', load('forced', ['Acme']));
    await succeedAll(deps().runs, 'forced-1');
    expect(await enqueueRun(deps(), input('forced-2', load('forced', ['Acme'])))).toMatchObject({ kind: 'enqueued', enqueued: 1 });

    const invalid: LoadedSource = { ...load('invalid', []), skipped: [{ rowNumber: 2, reason: 'empty_name', message: 'Row 2: brand name is empty' }] };
    expect(await produce('invalid-1', invalid)).toEqual({ kind: 'nothing_to_do', message: 'nothing to do: no valid brand in the source (1 row skipped as invalid)' });
    expect(await deps().runs.getRun('invalid-1')).toBeUndefined();
  });
});

describe('runs tell the truth', () => {
  it('re-enqueueing a run with a changed list adds the new brands to its total and jobs, and it completes only when they are done', async () => {
    await enqueueRun(deps(), input('grow', load('grow', ['Acme', 'Globex'])));
    await succeedAll(deps().runs, 'grow');
    expect(await deps().runs.getRun('grow')).toMatchObject({ status: 'completed', total: 2 });

    const grown = await produce('grow', load('grow', ['Acme', 'Globex', 'Initech']));
    expect(grown).toMatchObject({ kind: 'enqueued', enqueued: 1, run: { status: 'running', total: 3, succeeded: 2 } });
    expect(await queue.getJob(brandJobId('grow', 'initech'))).toBeDefined();
    await succeedAll(deps().runs, 'grow');
    expect(await deps().runs.getRun('grow')).toMatchObject({ status: 'completed', total: 3, succeeded: 3 });
  });

  it('two producers enqueueing overlapping lists into the same run count the union', async () => {
    const a = Array.from({ length: 40 }, (_, i) => `Brand ${i}`);
    const b = Array.from({ length: 40 }, (_, i) => `Brand ${i + 20}`);
    const [first, second] = await Promise.all([enqueueRun(deps(), input('twice', load('twice', a))), enqueueRun(deps(), input('twice', load('twice', b)))]);
    expect([first.kind, second.kind]).toEqual(['enqueued', 'enqueued']);
    expect(await deps().runs.getRun('twice')).toMatchObject({ total: 60, status: 'running' });
    await succeedAll(deps().runs, 'twice');
    expect(await deps().runs.getRun('twice')).toMatchObject({ total: 60, succeeded: 60, status: 'completed' });
  });

  it('refuses to put another source into an existing run, as bad input', async () => {
    await enqueueRun(deps(), input('owned', load('owner', ['Acme'])));
    const error = await enqueueRun(deps(), input('owned', load('intruder', ['Globex']))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as Error).message).toMatch(/run owned belongs to owner/);
    expect(await deps().runs.getRun('owned')).toMatchObject({ total: 1 });
  });
});
