import { encode } from 'gpt-tokenizer';
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  AuthenticationError,
  InternalServerError,
  RateLimitError,
} from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { RetryAfterMode } from '../server/retry-headers.js';
import { startFakeOpenAI } from '../start.js';
import { expectedContent } from './completion.js';
import { expectedFacts } from './facts.js';
import { DEFAULT_LLM_PRICING, DEFAULT_MAX_TOKENS, llmCostMicros, type FakeOpenAIOptions, type FakeOpenAIServer } from './fake-openai.js';
import { countChatPromptTokens, countResponseFormatTokens } from './tokens.js';

const MODEL = 'gpt-4o-mini';
let fake: FakeOpenAIServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeOpenAIOptions = {}): Promise<{ server: FakeOpenAIServer; client: OpenAI }> {
  fake = await startFakeOpenAI(opts);
  return { server: fake, client: new OpenAI({ apiKey: opts.apiKey ?? 'sk-test', baseURL: fake.url, maxRetries: 0 }) };
}

function messagesFor(brand: string, urls: string[] = []): OpenAI.ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: 'You extract brand facts. Answer with JSON only.' },
    { role: 'user', content: [`Brand: ${brand}`, ...urls.map((u) => `URL: ${u}`), 'Snippet: some text'].join('\n') },
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

describe('fake OpenAI chat completions through the openai SDK', () => {
  it('answers deterministic facts with OpenAI-style usage, headers and billing', async () => {
    const { server, client } = await start();
    const urls = ['https://acme.example.com/about', 'https://news.example.org/acme'];
    const messages = messagesFor('Acme Rockets', urls);
    const { data, response } = await client.chat.completions.create({ model: MODEL, messages }).withResponse();

    const choice = data.choices[0];
    expect(choice?.finish_reason).toBe('stop');
    expect(choice?.message.role).toBe('assistant');
    const content = choice?.message.content ?? '';
    expect(JSON.parse(content)).toEqual({ ...expectedFacts('Acme Rockets'), sources: urls });
    expect(content).toBe(expectedContent({ brand: 'Acme Rockets', urls }));
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe(MODEL);

    const promptTokens = countChatPromptTokens(messages);
    expect(data.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: encode(content).length,
      total_tokens: promptTokens + encode(content).length,
    });

    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('10000');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('9999');
    // The TPM window counted the prompt plus the output cap (no max_tokens: the default cap), not the usage.
    expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBe(10_000_000 - (promptTokens + DEFAULT_MAX_TOKENS));
    expect(response.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+ms|\d+(\.\d+)?s|\d+m\d+(\.\d+)?s)$/);
    expect(response.headers.get('x-ratelimit-reset-tokens')).toMatch(/^(\d+ms|\d+(\.\d+)?s|\d+m\d+(\.\d+)?s)$/);

    const [entry] = server.ledger.entries();
    expect(entry).toMatchObject({
      provider: 'openai',
      path: '/v1/chat/completions',
      brand: 'Acme Rockets',
      status: 200,
      authorized: true,
      admitted: true,
      model: MODEL,
      promptTokens,
      completionTokens: encode(content).length,
      rateLimitTokens: promptTokens + DEFAULT_MAX_TOKENS,
      billed: true,
    });
    expect(entry?.costMicros).toBe(llmCostMicros(DEFAULT_LLM_PRICING, promptTokens, encode(content).length));
    expect(server.ledger.billedMicros()).toBe(entry?.costMicros);
  });

  it('answers a deterministic error object when the prompt names no brand, and caps sources at 5', async () => {
    const { client } = await start();
    const none = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }] });
    expect(JSON.parse(none.choices[0]?.message.content ?? '')).toEqual({ error: 'no brand' });

    const urls = Array.from({ length: 7 }, (_, i) => `https://s${i}.example.org/`);
    const many = await client.chat.completions.create({ model: MODEL, messages: messagesFor('Zeta', urls) });
    expect(JSON.parse(many.choices[0]?.message.content ?? '{}').sources).toEqual(urls.slice(0, 5));
  });

  it('truncates at max_tokens with finish_reason "length"', async () => {
    const { server, client } = await start();
    const messages = messagesFor('Northwind');
    const res = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 5 });
    expect(res.choices[0]?.finish_reason).toBe('length');
    expect(res.usage?.completion_tokens).toBe(5);
    const full = expectedContent({ brand: 'Northwind', urls: [] });
    expect(full.startsWith(res.choices[0]?.message.content ?? 'x')).toBe(true);
    expect(server.ledger.entries()[0]?.finishReason).toBe('length');

    const viaNewParam = await client.chat.completions.create({ model: MODEL, messages, max_completion_tokens: 3 });
    expect(viaNewParam.usage?.completion_tokens).toBe(3);
  });

  it('enforces rpm on its sliding window with an OpenAI 429 and Retry-After headers', async () => {
    // The sliding window alone: slices would refuse the second request already (see fake-openai-limits.test.ts).
    const { server, client } = await start({ rpm: 2, windowMs: 10_000, sliceMs: 0 });
    const body = { model: MODEL, messages: messagesFor('Globex') };
    await client.chat.completions.create(body);
    await client.chat.completions.create(body);
    const err = await rejection(client.chat.completions.create(body));

    expect(err).toBeInstanceOf(RateLimitError);
    const e = err as RateLimitError;
    expect(e.status).toBe(429);
    expect(e.code).toBe('rate_limit_exceeded');
    expect(e.type).toBe('requests');
    expect(e.message).toMatch(
      /Rate limit reached for gpt-4o-mini in organization org-fake on requests per min \(RPM\): Limit 2, Used 2, Requested 1\. Please try again in \d+(\.\d+)?m?s\./,
    );
    const retryMs = Number(e.headers?.get('retry-after-ms'));
    expect(retryMs).toBeGreaterThan(0);
    expect(retryMs).toBeLessThanOrEqual(10_000);
    expect(e.headers?.get('retry-after')).toBe(String(Math.ceil(retryMs / 1000)));
    expect(e.headers?.get('x-ratelimit-remaining-requests')).toBe('0');

    const rejected = server.ledger.entries()[2];
    expect(rejected).toMatchObject({ status: 429, admitted: false, rateLimitType: 'requests', retryAfterMs: retryMs });
    expect(server.ledger.maxRequestsInAnyWindow(10_000)).toBe(2);
    expect(server.ledger.maxRequestsInAnyWindow(10_000, () => true)).toBe(3);
    expect(server.ledger.billedMicros()).toBe(2 * (server.ledger.entries()[0]?.costMicros ?? 0));
  });

  it('enforces tpm on what it counts at admission: the prompt with its schema plus max_tokens, not the answer', async () => {
    const messages = messagesFor('Initech');
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: { name: 'facts', strict: true, schema: { type: 'object', properties: { website: { type: 'string' } }, required: ['website'], additionalProperties: false } },
    };
    const maxTokens = 700;
    const prompt = countChatPromptTokens(messages) + countResponseFormatTokens(responseFormat);
    const perCall = prompt + maxTokens;
    // The sliding window alone: 1 s slices of this tpm would refuse the second call already.
    const { server, client } = await start({ tpm: perCall * 2 + 1, windowMs: 10_000, sliceMs: 0 });
    const body = { model: MODEL, messages, max_tokens: maxTokens, response_format: responseFormat };
    const first = await client.chat.completions.create(body);
    await client.chat.completions.create(body);
    const e = (await rejection(client.chat.completions.create(body))) as RateLimitError;

    // The answers used far fewer tokens than the cap: only the count at admission refuses the third call.
    expect((first.usage?.prompt_tokens ?? 0) + (first.usage?.completion_tokens ?? 0)).toBeLessThan(perCall / 2);
    expect(e).toBeInstanceOf(RateLimitError);
    expect(e.type).toBe('tokens');
    expect(e.message).toContain(
      `on tokens per min (TPM): Limit ${perCall * 2 + 1}, Used ${perCall * 2}, Requested ${perCall}. Please try again in`,
    );
    expect(server.ledger.maxTokensInAnyWindow(10_000)).toBe(perCall * 2);
  });

  it.each<[RetryAfterMode, (h: Headers, sentAt: number) => void]>([
    ['seconds', (h) => (expect(h.get('retry-after')).toBe('2'), expect(h.get('retry-after-ms')).toBeNull())],
    ['ms', (h) => (expect(h.get('retry-after-ms')).toBe('1500'), expect(h.get('retry-after')).toBeNull())],
    ['both', (h) => (expect(h.get('retry-after')).toBe('2'), expect(h.get('retry-after-ms')).toBe('1500'))],
    [
      'date',
      (h, sentAt) => {
        // HTTP dates have 1 s resolution and are rounded up, never early.
        const when = Date.parse(h.get('retry-after') ?? '');
        expect(when).toBeGreaterThanOrEqual(sentAt + 1500);
        expect(when).toBeLessThanOrEqual(Date.now() + 2500);
        expect(h.get('retry-after-ms')).toBeNull();
      },
    ],
    ['none', (h) => (expect(h.get('retry-after')).toBeNull(), expect(h.get('retry-after-ms')).toBeNull())],
  ])('sends Retry-After in %s form', async (mode, check) => {
    const { server, client } = await start({ retryAfterHeaders: mode });
    server.injectFaults([{ status: 429, retryAfterMs: 1500 }]);
    const sentAt = Date.now();
    const e = (await rejection(client.chat.completions.create({ model: MODEL, messages: messagesFor('A') }))) as RateLimitError;
    expect(e).toBeInstanceOf(RateLimitError);
    expect(e.message).toContain('Please try again in 1.5s.');
    check(e.headers as Headers, sentAt);
    expect(server.ledger.entries()[0]).toMatchObject({ status: 429, retryAfterMs: 1500, fault: 'status' });
  });

  it('plays scripted faults in order: 500, timeout, malformed, reset, insufficient_quota, bad content', async () => {
    const { server, client } = await start();
    server.injectFaults([
      { status: 500 },
      { kind: 'timeout', ms: 5000 },
      { kind: 'malformed' },
      { kind: 'reset' },
      { status: 429, code: 'insufficient_quota' },
      { kind: 'bad-json-content' },
    ]);
    const call = (timeout?: number) =>
      client.chat.completions.create({ model: MODEL, messages: messagesFor('Umbrella') }, timeout ? { timeout } : {});

    expect(await rejection(call())).toBeInstanceOf(InternalServerError);
    expect(await rejection(call(300))).toBeInstanceOf(APIConnectionTimeoutError);
    const malformed = await rejection(call());
    expect(malformed).toBeInstanceOf(Error);
    expect(malformed).not.toBeInstanceOf(APIError);
    expect(await rejection(call())).toBeInstanceOf(APIConnectionError);
    const quota = (await rejection(call())) as RateLimitError;
    expect(quota).toBeInstanceOf(RateLimitError);
    expect(quota.code).toBe('insufficient_quota');
    expect(quota.headers?.get('retry-after')).toBeNull();
    const bad = await call();
    expect(() => JSON.parse(bad.choices[0]?.message.content ?? '')).toThrow();
    expect(server.pendingFaults).toBe(0);

    const good = await call();
    expect(JSON.parse(good.choices[0]?.message.content ?? '')).toMatchObject(expectedFacts('Umbrella'));

    const entries = server.ledger.entries();
    expect(entries.map((e) => [e.status, e.fault])).toEqual([
      [500, 'status'],
      [0, 'timeout'],
      [200, 'malformed'],
      [0, 'reset'],
      [429, 'status'],
      [200, 'bad-json-content'],
      [200, null],
    ]);
    expect(entries[4]?.errorCode).toBe('insufficient_quota');
    expect(entries[4]?.retryAfterMs).toBeNull();
    // Billed: the bad-content answer (the provider still charges it) and the good one.
    expect(server.ledger.billedMicros()).toBe((entries[5]?.costMicros ?? 0) + (entries[6]?.costMicros ?? 0));
    expect(entries[5]?.costMicros).toBeGreaterThan(0);
    expect(entries[2]?.costMicros).toBe(0);
  });

  it('filters scripted faults by brand and records announced cooldowns', async () => {
    const { server, client } = await start();
    server.injectFaults([{ status: 500, brand: 'Hooli' }, { status: 429, retryAfterMs: 60_000, match: (b) => b.startsWith('Pied') }]);
    const ask = (brand: string) => client.chat.completions.create({ model: MODEL, messages: messagesFor(brand) });

    await ask('Acme');
    expect(await rejection(ask('Pied Piper'))).toBeInstanceOf(RateLimitError);
    expect(await rejection(ask('Hooli'))).toBeInstanceOf(InternalServerError);
    await ask('Hooli');

    expect(server.ledger.requestsFor('Hooli').map((e) => e.status)).toEqual([500, 200]);
    // Everything after the 60 s cooldown announcement arrived inside it.
    expect(server.ledger.cooldownViolations().map((e) => e.brand)).toEqual(['Hooli', 'Hooli']);
  });

  it('checks the API key and the request body', async () => {
    const { client, server } = await start({ apiKey: 'sk-right' });
    const wrong = new OpenAI({ apiKey: 'sk-wrong-key-123', baseURL: server.url, maxRetries: 0 });
    const e = (await rejection(wrong.chat.completions.create({ model: MODEL, messages: messagesFor('A') }))) as AuthenticationError;
    expect(e).toBeInstanceOf(AuthenticationError);
    expect(e.code).toBe('invalid_api_key');
    expect(e.message).toContain('Incorrect API key provided');

    const res = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-right', 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { message: "Missing required parameter: 'messages'.", type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' },
    });

    await client.chat.completions.create({ model: MODEL, messages: messagesFor('A') });
    expect(server.ledger.entries().map((x) => [x.status, x.authorized, x.admitted])).toEqual([
      [401, false, false],
      [400, true, false],
      [200, true, true],
    ]);
  });

  it('speaks OpenRouter: usage.cost, 402 with limit_source, OpenRouter-shaped 429', async () => {
    const pricing = { inputPerMillion: 2, outputPerMillion: 8 };
    fake = await startFakeOpenAI({ flavor: 'openrouter', pricing, rpm: 1, windowMs: 10_000 });
    const client = new OpenAI({ apiKey: 'sk-or-test', baseURL: `${fake.origin}/api/v1`, maxRetries: 0 });
    const messages = messagesFor('Soylent');
    const { data, response } = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages }).withResponse();
    const usage = data.usage as OpenAI.CompletionUsage & { cost: number };
    expect(usage.cost).toBe(llmCostMicros(pricing, usage.prompt_tokens, usage.completion_tokens) / 1e6);
    expect(response.headers.get('x-ratelimit-limit-requests')).toBeNull();

    const limited = (await rejection(client.chat.completions.create({ model: 'm', messages }))) as RateLimitError;
    expect(limited.error).toEqual({ code: 429, message: 'Rate limit exceeded', metadata: { error_type: 'rate_limit_exceeded' } });

    fake.configure({ rpm: 100 });
    fake.injectFaults([{ status: 402, metadata: { limit_source: 'openrouter_key_limit' } }]);
    const paid = (await rejection(client.chat.completions.create({ model: 'm', messages }))) as APIError;
    expect(paid.status).toBe(402);
    expect(paid.code).toBe(402);
    expect((paid.error as { metadata?: unknown }).metadata).toEqual({ limit_source: 'openrouter_key_limit' });
  });

  it('draws random faults and latency from the seed, identically for the same seed', async () => {
    const run = async (): Promise<number[]> => {
      const { server, client } = await start({ seed: 42, faultRates: { 500: 0.4 }, latencyMs: { min: 0, max: 2 } });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        statuses.push(
          await client.chat.completions.create({ model: MODEL, messages: messagesFor(`B${i}`) }).then(
            () => 200,
            (err: unknown) => (err instanceof APIError ? (err.status ?? 0) : -1),
          ),
        );
      }
      await server.close();
      return statuses;
    };
    const first = await run();
    const second = await run();
    expect(first).toEqual(second);
    expect(first).toContain(500);
    expect(first).toContain(200);
  });

  it('adds latency before answering', async () => {
    const { client } = await start({ latencyMs: { min: 60, max: 60 } });
    const t0 = Date.now();
    await client.chat.completions.create({ model: MODEL, messages: messagesFor('Slow') });
    // Only a lower bound: a loaded machine may be slower, never faster.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
  });
});
