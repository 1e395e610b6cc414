import { encode } from 'gpt-tokenizer';
import OpenAI, { BadRequestError, RateLimitError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { RemoteFake } from '../remote.js';
import { startFakeOpenAI } from '../start.js';
import { DEFAULT_LLM_PRICING, llmCostMicros, type FakeOpenAIOptions, type FakeOpenAIServer } from './fake-openai.js';
import { countChatPromptTokens } from './tokens.js';

const MODEL = 'gpt-4o-mini';
const HALF_PRICE = { inputPerMillion: DEFAULT_LLM_PRICING.inputPerMillion / 2, outputPerMillion: DEFAULT_LLM_PRICING.outputPerMillion / 2 };
let fake: FakeOpenAIServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeOpenAIOptions = {}): Promise<{ server: FakeOpenAIServer; client: OpenAI }> {
  fake = await startFakeOpenAI(opts);
  return { server: fake, client: new OpenAI({ apiKey: 'sk-test', baseURL: fake.url, maxRetries: 0 }) };
}

function messagesFor(brand: string): OpenAI.ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: 'You extract brand facts. Answer with JSON only.' },
    { role: 'user', content: `Brand: ${brand}\nSnippet: some text` },
  ];
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('fake OpenAI service_tier "flex" through the openai SDK', () => {
  it('bills flex at half the standard price and names the tier in the answer; auto and absent are standard', async () => {
    const { server, client } = await start();
    const messages = messagesFor('Acme');
    const flex = await client.chat.completions.create({ model: MODEL, messages, service_tier: 'flex' });
    const auto = await client.chat.completions.create({ model: MODEL, messages, service_tier: 'auto' });
    const plain = await client.chat.completions.create({ model: MODEL, messages });

    expect(flex.service_tier).toBe('flex');
    expect(auto.service_tier).toBe('default');
    expect(plain.service_tier).toBe('default');
    // Same deterministic answer whatever the tier.
    expect(flex.choices[0]?.message.content).toBe(plain.choices[0]?.message.content);

    const prompt = countChatPromptTokens(messages);
    const completion = encode(plain.choices[0]?.message.content ?? '').length;
    const [flexEntry, autoEntry, plainEntry] = server.ledger.entries();
    expect(flexEntry).toMatchObject({ tier: 'flex', billed: true, costMicros: llmCostMicros(HALF_PRICE, prompt, completion) });
    expect(autoEntry).toMatchObject({ tier: 'standard', costMicros: llmCostMicros(DEFAULT_LLM_PRICING, prompt, completion) });
    expect(plainEntry).toMatchObject({ tier: 'standard', costMicros: llmCostMicros(DEFAULT_LLM_PRICING, prompt, completion) });
    expect(server.tierPriceOf(MODEL, 'flex')).toEqual(HALF_PRICE);

    const totals = server.ledger.tierTotals();
    expect(totals.flex).toEqual({ requests: 1, paidCalls: 1, billedMicros: flexEntry?.costMicros, promptTokens: prompt, completionTokens: completion });
    expect(totals.standard).toMatchObject({ requests: 2, paidCalls: 2, billedMicros: 2 * (plainEntry?.costMicros ?? 0) });
    expect(totals.batch.requests).toBe(0);
  });

  it('bills tier prices set by tierDiscount or exact tierPrices', async () => {
    const { server, client } = await start({ tierDiscount: { flex: 0.25 }, prices: { 'gpt-5-mini': { inputPerMillion: 1, outputPerMillion: 4 } } });
    server.configure({ tierPrices: { flex: { 'gpt-5-mini': { inputPerMillion: 0.1, outputPerMillion: 0.2 } } } });
    const messages = messagesFor('Globex');
    const discounted = await client.chat.completions.create({ model: MODEL, messages, service_tier: 'flex' });
    const exact = await client.chat.completions.create({ model: 'gpt-5-mini', messages, service_tier: 'flex' });

    const prompt = countChatPromptTokens(messages);
    const costOf = (res: OpenAI.ChatCompletion, price: { inputPerMillion: number; outputPerMillion: number }) =>
      llmCostMicros(price, prompt, res.usage?.completion_tokens ?? -1);
    const threeQuarters = { inputPerMillion: DEFAULT_LLM_PRICING.inputPerMillion * 0.75, outputPerMillion: DEFAULT_LLM_PRICING.outputPerMillion * 0.75 };
    expect(server.ledger.entries().map((e) => e.costMicros)).toEqual([
      costOf(discounted, threeQuarters),
      costOf(exact, { inputPerMillion: 0.1, outputPerMillion: 0.2 }),
    ]);
  });

  it('refuses flex for a model outside flexModels with a 400 on service_tier, unbilled and without falling back', async () => {
    const { server, client } = await start();
    const e = (await rejection(
      client.chat.completions.create({ model: 'gpt-4.1', messages: messagesFor('Initech'), service_tier: 'flex' }),
    )) as BadRequestError;
    expect(e).toBeInstanceOf(BadRequestError);
    expect(e.status).toBe(400);
    expect(e.param).toBe('service_tier');
    expect(e.code).toBe('unsupported_value');
    expect(e.type).toBe('invalid_request_error');
    expect(server.ledger.entries()[0]).toMatchObject({ status: 400, tier: 'flex', billed: false, admitted: false, model: 'gpt-4.1' });

    server.configure({ flexModels: ['gpt-4.1'] });
    const ok = await client.chat.completions.create({ model: 'gpt-4.1', messages: messagesFor('Initech'), service_tier: 'flex' });
    expect(ok.service_tier).toBe('flex');
    const bogus = (await rejection(
      client.chat.completions.create({ model: MODEL, messages: messagesFor('Initech'), service_tier: 'cheap' as 'flex' }),
    )) as BadRequestError;
    expect(bogus.code).toBe('invalid_value');
  });

  it('answers injected capacity shortages with 429 Resource Unavailable: no Retry-After, not billed, not counted in rpm', async () => {
    // One request per 10 s: had the shortages counted, the third flex request would be rate limited.
    const { server, client } = await start({ rpm: 1, windowMs: 10_000, sliceMs: 0 });
    server.injectFlexShortage(2);
    const ask = () => client.chat.completions.create({ model: MODEL, messages: messagesFor('Hooli'), service_tier: 'flex' });

    for (let i = 0; i < 2; i++) {
      const e = (await rejection(ask())) as RateLimitError;
      expect(e).toBeInstanceOf(RateLimitError);
      expect(e.status).toBe(429);
      expect(e.code).toBe('resource_unavailable');
      expect(e.type).toBe('service_unavailable_error');
      expect(e.message).toContain('Resource Unavailable');
      expect(e.headers?.get('retry-after')).toBeNull();
      expect(e.headers?.get('retry-after-ms')).toBeNull();
    }
    expect(server.pendingFlexShortages).toBe(0);
    const served = await ask();
    expect(served.service_tier).toBe('flex');

    const entries = server.ledger.entries();
    expect(entries.map((x) => [x.status, x.errorCode, x.admitted, x.counted, x.billed, x.tier, x.brand])).toEqual([
      [429, 'resource_unavailable', false, false, false, 'flex', 'Hooli'],
      [429, 'resource_unavailable', false, false, false, 'flex', 'Hooli'],
      [200, null, true, true, true, 'flex', 'Hooli'],
    ]);
    expect(entries.filter((x) => x.cooldownUntil !== null)).toEqual([]);
    expect(server.ledger.tierTotals().flex).toMatchObject({ requests: 3, paidCalls: 1, billedMicros: entries[2]?.costMicros });
  });

  it('draws shortages at flexUnavailableRate for flex requests only, the same for the same seed', async () => {
    const statuses = async (): Promise<number[]> => {
      const { server, client } = await start({ seed: 9, flexUnavailableRate: 0.5 });
      const out: number[] = [];
      for (let i = 0; i < 16; i++) {
        const tier = i % 2 === 0 ? 'flex' : 'default';
        out.push(
          await client.chat.completions
            .create({ model: MODEL, messages: messagesFor(`B${i}`), service_tier: tier })
            .then(() => 200, (err: unknown) => (err instanceof RateLimitError ? 429 : -1)),
        );
      }
      await server.close();
      return out;
    };
    const first = await statuses();
    expect(first).toEqual(await statuses());
    expect(first.filter((_, i) => i % 2 === 1).every((s) => s === 200)).toBe(true);
    expect(first.filter((_, i) => i % 2 === 0)).toContain(429);
    expect(first.filter((_, i) => i % 2 === 0)).toContain(200);
  });

  it('takes shortages over HTTP and reports per-tier totals in the remote summary', async () => {
    const { server, client } = await start();
    const remote = new RemoteFake(server.url);
    await remote.injectFlexShortage(1);
    await expect(client.chat.completions.create({ model: MODEL, messages: messagesFor('Soylent'), service_tier: 'flex' })).rejects.toBeInstanceOf(
      RateLimitError,
    );
    await client.chat.completions.create({ model: MODEL, messages: messagesFor('Soylent'), service_tier: 'flex' });
    await client.chat.completions.create({ model: MODEL, messages: messagesFor('Soylent') });

    const summary = await remote.summary();
    expect(summary.byTier).toEqual(server.ledger.tierTotals());
    expect(summary.byTier.flex).toMatchObject({ requests: 2, paidCalls: 1 });
    expect(summary.byTier.standard).toMatchObject({ requests: 1, paidCalls: 1 });
    // Same tokens at half the price: equal up to the rounding of each bill to whole micros.
    expect(Math.abs(summary.byTier.flex.billedMicros * 2 - summary.byTier.standard.billedMicros)).toBeLessThanOrEqual(1);
  });
});
