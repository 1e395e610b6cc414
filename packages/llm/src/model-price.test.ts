import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@brandq/errors';
import { startFakeOpenAI, type FakeOpenAIServer } from '@brandq/fakes';
import { resolveModelPrice } from './model-price.js';

let fake: FakeOpenAIServer;
beforeAll(async () => {
  fake = await startFakeOpenAI({ flavor: 'openrouter', prices: { 'anthropic/claude-x': { inputPerMillion: 3, outputPerMillion: 15 }, 'meta/free:free': { inputPerMillion: 0, outputPerMillion: 0 } } });
});
afterAll(async () => {
  await fake.close();
});

const openRouter = () => `${fake.origin}/api/v1`;

describe('resolveModelPrice', () => {
  it('takes the configured table first', async () => {
    const price = await resolveModelPrice({ model: 'anthropic/claude-x', baseURL: openRouter(), apiKey: 'k', table: { 'anthropic/claude-x': { inputPerMillion: 1, outputPerMillion: 2 } } });
    expect(price).toEqual({ inputPerMillion: 1, outputPerMillion: 2 });
  });

  it('prices a model missing from the table from the provider\'s models endpoint (OpenRouter: USD per token)', async () => {
    const price = await resolveModelPrice({ model: 'anthropic/claude-x', baseURL: openRouter(), apiKey: 'k', table: {} });
    expect(price.inputPerMillion).toBeCloseTo(3, 9);
    expect(price.outputPerMillion).toBeCloseTo(15, 9);
  });

  it('accepts a free model listed at 0', async () => {
    expect(await resolveModelPrice({ model: 'meta/free:free', baseURL: openRouter(), apiKey: 'k', table: {} })).toEqual({ inputPerMillion: 0, outputPerMillion: 0 });
  });

  it('refuses a model priced nowhere, naming LLM_PRICING, instead of reserving its calls at 0', async () => {
    const unknown = resolveModelPrice({ model: 'vendor/unknown', baseURL: openRouter(), apiKey: 'k', table: {} });
    await expect(unknown).rejects.toBeInstanceOf(ConfigError);
    await expect(unknown).rejects.toThrow(/LLM_PRICING/);
  });

  it('refuses when the models endpoint cannot be read', async () => {
    await expect(resolveModelPrice({ model: 'x/y', baseURL: 'http://127.0.0.1:9/api/v1', apiKey: 'k', table: {}, timeoutMs: 2000 })).rejects.toThrow(/could not be read.*LLM_PRICING/);
  });
});
