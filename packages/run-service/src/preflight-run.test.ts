import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@brandq/config';
import { BadInputError } from '@brandq/errors';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { parseRecipe } from '@brandq/recipe';
import { RunStore } from '@brandq/runs';
import { useTestRedis } from '@brandq/testing';
import { createRun } from './create-run.js';

const redis = useTestRedis();
let queue: BrandQueue;
beforeAll(() => {
  queue = createBrandQueue(redis.client());
});
afterAll(() => queue.close());

/** A recipe whose one LLM step asks for this output cap. */
const recipeWithCap = (cap: number) =>
  parseRecipe(
    [
      'name: capped',
      'steps:',
      '  - { id: search, type: search, query: "{{brand}}" }',
      '  - id: facts',
      '    type: llm',
      `    max_output_tokens: ${cap}`,
      '    prompt: "Brand: {{brand}}\\n{{results.search}}"',
      '    fields: [{ name: category, type: string, description: the category }]',
    ].join('\n'),
    'capped.yaml',
  );

describe('the preflight guard on a recipe', () => {
  it('refuses a step whose prompt and output cap can never fit the LLM tokens-per-minute limit, naming the step, and creates no run', async () => {
    // The shipped limit: 30,000 TPM with 15% headroom, 25,500 effective.
    const config = loadConfig({ REDIS_URL: redis.url });
    const request = { source: { csvText: 'brand\nAcme\nGlobex\n' }, budgetMicros: 0, noCache: true, force: false, allowPartial: true, refuseDuringCooldown: false };
    const refused = await createRun({ redis: redis.client(), queue, config }, { ...request, runId: 'too-large', recipe: recipeWithCap(26_000) }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BadInputError);
    expect((refused as Error).message).toMatch(/recipe step "facts": a call needs about [\d,]+ tokens .* above the LLM's effective limit of 25,500 tokens per minute/);
    expect(await new RunStore(redis.client()).getRun('too-large')).toBeUndefined();

    const fits = await createRun({ redis: redis.client(), queue, config }, { ...request, runId: 'fits', recipe: recipeWithCap(1_000) });
    expect(fits).toMatchObject({ kind: 'created', runId: 'fits' });
  });

  it("refuses a tier the provider or model does not offer, naming the step; a tier it offers is kept on the run, and the estimate shows the saving", async () => {
    const request = { source: { csvText: 'brand\nAcme\nGlobex\n' }, budgetMicros: 0, noCache: true, force: false, allowPartial: true, refuseDuringCooldown: false, recipe: recipeWithCap(500) };
    const openai = loadConfig({ REDIS_URL: redis.url });
    const deps = { redis: redis.client(), queue, config: openai };
    const noFlex = await createRun(deps, { ...request, runId: 'no-flex', llmTier: 'flex' }).catch((e: unknown) => e);
    expect(noFlex).toBeInstanceOf(BadInputError);
    expect((noFlex as Error).message).toMatch(/recipe step "facts": model gpt-4o-mini has no flex tier/);
    const openRouter = loadConfig({ REDIS_URL: redis.url, OPENAI_BASE_URL: 'https://openrouter.ai/api/v1' });
    const routed = await createRun({ ...deps, config: openRouter }, { ...request, runId: 'routed', llmTier: 'batch' }).catch((e: unknown) => e);
    expect((routed as Error).message).toMatch(/recipe step "facts": the batch tier is OpenAI's; OpenRouter .* does not offer it/);
    for (const id of ['no-flex', 'routed']) expect(await new RunStore(redis.client()).getRun(id)).toBeUndefined();

    const flexModel = loadConfig({ REDIS_URL: redis.url, LLM_FLEX_MODELS: 'gpt-4o-mini' });
    const batch = await createRun({ ...deps, config: flexModel }, { ...request, runId: 'batched', llmTier: 'batch' });
    expect(batch.kind).toBe('created');
    if (batch.kind !== 'created') return;
    const facts = batch.estimate.steps.find((step) => step.id === 'facts');
    expect(facts).toMatchObject({ tier: 'batch' });
    expect(facts!.costMicros * 2).toBeCloseTo(facts!.standardCostMicros, -1);
    expect(batch.estimate.savingMicros).toBe(facts!.standardCostMicros - facts!.costMicros);
    expect(await new RunStore(redis.client()).getRun('batched')).toMatchObject({ llmTier: 'batch' });
  });
});
