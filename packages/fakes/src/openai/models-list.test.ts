import OpenAI, { AuthenticationError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { RemoteFake } from '../remote.js';
import { startFakeOpenAI } from '../start.js';
import { DEFAULT_MODELS, llmCostMicros, type FakeOpenAIServer } from './fake-openai.js';
import { usdPerToken } from './models-list.js';

let fake: FakeOpenAIServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

interface OpenRouterModel {
  id: string;
  pricing: { prompt: string; completion: string };
}

const GPT_4O = { inputPerMillion: 2.5, outputPerMillion: 10 };

describe('fake OpenAI models endpoints', () => {
  it('serves GET /v1/models in the shape the openai SDK pages over, behind the API key', async () => {
    fake = await startFakeOpenAI({ apiKey: 'sk-right', prices: { 'gpt-4o': GPT_4O } });
    const client = new OpenAI({ apiKey: 'sk-right', baseURL: fake.url, maxRetries: 0 });
    const ids: string[] = [];
    for await (const model of client.models.list()) {
      expect(model.object).toBe('model');
      expect(typeof model.created).toBe('number');
      expect(typeof model.owned_by).toBe('string');
      ids.push(model.id);
    }
    expect(ids.sort()).toEqual([...DEFAULT_MODELS, 'gpt-4o'].sort());

    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: fake.url, maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(AuthenticationError);
    // Listing models is not a chat call: nothing admitted, nothing billed.
    expect(fake.ledger.filter((e) => e.admitted || e.billed)).toEqual([]);
  });

  it('serves OpenRouter GET /api/v1/models without a key, with the per-token USD strings it bills', async () => {
    fake = await startFakeOpenAI({ flavor: 'openrouter', apiKey: 'sk-or-right', prices: { 'openai/gpt-4o': GPT_4O } });
    const res = await fetch(`${fake.origin}/api/v1/models`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: OpenRouterModel[] };
    const byId = new Map(body.data.map((m) => [m.id, m.pricing]));
    expect(byId.get('openai/gpt-4o')).toMatchObject({ prompt: '0.0000025', completion: '0.00001' });
    // Models not priced explicitly list (and bill) the fallback `pricing`: $0.15 / $0.60 per million.
    expect(byId.get('openai/gpt-4o-mini')).toMatchObject({ prompt: '0.00000015', completion: '0.0000006' });

    // The same list through the SDK pointed at OpenRouter's base path.
    const client = new OpenAI({ apiKey: 'sk-or-right', baseURL: `${fake.origin}/api/v1`, maxRetries: 0 });
    const listed = (await client.models.list()).data as unknown as OpenRouterModel[];
    expect(listed.map((m) => m.id)).toEqual(body.data.map((m) => m.id));
  });

  it('bills what it lists, and a test can raise the price above brandq\'s table through /__fake/config', async () => {
    fake = await startFakeOpenAI({ flavor: 'openrouter' });
    const client = new OpenAI({ apiKey: 'sk-or', baseURL: `${fake.origin}/api/v1`, maxRetries: 0 });
    const expensive = { inputPerMillion: 30, outputPerMillion: 120 };
    await new RemoteFake(fake.origin).configure({ prices: { 'openai/gpt-4o-mini': expensive } });

    const listed = ((await (await fetch(`${fake.origin}/api/v1/models`)).json()) as { data: OpenRouterModel[] }).data;
    const pricing = listed.find((m) => m.id === 'openai/gpt-4o-mini')?.pricing;
    expect(pricing).toEqual(expect.objectContaining({ prompt: '0.00003', completion: '0.00012' }));

    const answer = await client.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'Brand: Acme' }],
    });
    const usage = answer.usage as OpenAI.CompletionUsage & { cost: number };
    const perToken = { prompt: Number(pricing?.prompt), completion: Number(pricing?.completion) };
    expect(usage.cost).toBeCloseTo(usage.prompt_tokens * perToken.prompt + usage.completion_tokens * perToken.completion, 12);
    expect(fake.ledger.entries().at(-1)?.costMicros).toBe(llmCostMicros(expensive, usage.prompt_tokens, usage.completion_tokens));
  });

  it('prints per-token prices as plain decimals, never in exponent form', () => {
    expect(usdPerToken(2.5)).toBe('0.0000025');
    expect(usdPerToken(0.15)).toBe('0.00000015');
    expect(usdPerToken(0.075)).toBe('0.000000075');
    expect(usdPerToken(10)).toBe('0.00001');
    expect(usdPerToken(1234.5)).toBe('0.0012345');
    expect(usdPerToken(0)).toBe('0');
  });
});
