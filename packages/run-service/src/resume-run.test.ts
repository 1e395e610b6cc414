import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FairScheduler } from '@brandq/fair-share';
import { loadConfig } from '@brandq/config';
import { defaultRecipe, parseRecipe } from '@brandq/recipe';
import type { BrandInput } from '@brandq/input';
import { CostLedger } from '@brandq/ledger';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { RunStore } from '@brandq/runs';
// @brandq/testing is not a dependency of this package; its source is imported directly.
import { useTestRedis } from '@brandq/testing';
import { enqueueRun } from './enqueue-run.js';
import { requeueRun, resumeRun } from './resume-run.js';

const redis = useTestRedis();
let queue: BrandQueue;
beforeAll(() => {
  queue = createBrandQueue(redis.client());
});
afterAll(() => queue.close());

const deps = () => ({ runs: new RunStore(redis.client()), ledger: new CostLedger(redis.client()), queue, scheduler: new FairScheduler(redis.client(), queue) });
const resumeOptions = { retryFailed: false, attempts: 3, retention: { keepCompleted: 100, keepFailed: 100 } };

async function newRun(runId: string, names: string[], budgetMicros: number): Promise<void> {
  const brands = names.map((name, i) => ({ key: name.toLowerCase(), name, rowNumber: i + 2, hints: {} }) as BrandInput);
  const loaded = { source: { type: 'csv' as const, path: `/tmp/${runId}.csv` }, sourceKey: `csv:/tmp/${runId}.csv`, brands, skipped: [] };
  await enqueueRun(deps(), { runId, loaded, recipe: defaultRecipe(), budgetMicros, attempts: 3, retention: resumeOptions.retention });
}

describe('resuming a run with a new budget', () => {
  it('sets the budget before reopening, so a late refusal under the old budget cannot hold the run again', async () => {
    const { runs, ledger } = deps();
    await newRun('resume-late', ['Acme', 'Globex'], 10_000);
    const oldEpoch = (await ledger.snapshot('resume-late')).budgetEpoch;
    expect(await runs.markBudgetExhausted('resume-late', oldEpoch, 'budget reached')).toBe(true);

    const resumed = await requeueRun(deps(), 'resume-late', { ...resumeOptions, budgetMicros: 50_000 });
    expect(resumed).toMatchObject({ status: 'running', requeued: 2 });
    expect(resumed.budgetEpoch).toBeGreaterThan(oldEpoch);
    // A worker's refusal computed before the resume arrives now.
    expect(await runs.markBudgetExhausted('resume-late', oldEpoch, 'late refusal')).toBe(false);
    expect(await runs.getRun('resume-late')).toMatchObject({ status: 'running' });
    // A refusal under the new budget still holds it.
    expect(await runs.markBudgetExhausted('resume-late', resumed.budgetEpoch as number, 'new budget reached')).toBe(true);
  });

  it('two concurrent resumes end running, under the budget set last', async () => {
    const { runs, ledger } = deps();
    await newRun('resume-race', ['Acme', 'Globex'], 10_000);
    await runs.markBudgetExhausted('resume-race', (await ledger.snapshot('resume-race')).budgetEpoch, 'budget reached');
    const [a, b] = await Promise.all([
      requeueRun(deps(), 'resume-race', { ...resumeOptions, budgetMicros: 20_000 }),
      requeueRun(deps(), 'resume-race', { ...resumeOptions, budgetMicros: 30_000 }),
    ]);
    const last = (a.budgetEpoch as number) > (b.budgetEpoch as number) ? 20_000 : 30_000;
    expect(await ledger.snapshot('resume-race')).toMatchObject({ budgetMicros: last, budgetEpoch: Math.max(a.budgetEpoch as number, b.budgetEpoch as number) });
    expect(await runs.getRun('resume-race')).toMatchObject({ status: 'running' });
  });

  it('a resume without --budget keeps the budget and its epoch, and a run with every brand done is completed, not running', async () => {
    const { runs, ledger } = deps();
    await newRun('resume-done', ['Acme'], 10_000);
    const before = await ledger.snapshot('resume-done');
    await runs.markBudgetExhausted('resume-done', before.budgetEpoch, 'budget reached');
    await runs.recordSuccess({ runId: 'resume-done', key: 'acme', brand: 'Acme', rowNumber: 2, processedAt: 'now', fields: {} });
    const resumed = await requeueRun(deps(), 'resume-done', resumeOptions);
    expect(resumed).toEqual({ status: 'completed', requeued: 0, reopened: 0 });
    expect(await ledger.snapshot('resume-done')).toMatchObject({ budgetMicros: 10_000, budgetEpoch: before.budgetEpoch });
    expect(await runs.getRun('resume-done')).toMatchObject({ status: 'completed' });
  });
});

describe('resuming a run with another recipe', () => {
  const tagline = (cap: number) =>
    parseRecipe(
      ['name: tagline', 'steps:', '  - id: tag', '    type: llm', `    max_output_tokens: ${cap}`, '    prompt: "Brand: {{brand}}"', '    fields: [{ name: tagline, type: string, description: a tagline }]'].join('\n'),
      'tagline.yaml',
    );

  it('is refused without --force; with it, the recipe passes the new-run guard first and only then replaces the run\'s', async () => {
    await newRun('switch-1', ['Acme', 'Globex'], 0);
    const config = loadConfig({ REDIS_URL: redis.url });
    const service = { redis: redis.client(), queue, config };
    await expect(resumeRun(service, { runId: 'switch-1', retryFailed: false, recipe: tagline(200), force: false })).rejects.toThrow(/follows recipe "brand-facts", not the one given \("tagline"\)/);
    // Above the shipped 25,500 effective tokens per minute: the run keeps its recipe.
    await expect(resumeRun(service, { runId: 'switch-1', retryFailed: false, recipe: tagline(30_000), force: true })).rejects.toThrow(/recipe step "tag": a call needs about/);
    expect(await new RunStore(redis.client()).getRun('switch-1')).toMatchObject({ recipeName: 'brand-facts' });
    await resumeRun(service, { runId: 'switch-1', retryFailed: false, recipe: tagline(200), force: true });
    expect(await new RunStore(redis.client()).getRun('switch-1')).toMatchObject({ recipeName: 'tagline' });
  });
});
