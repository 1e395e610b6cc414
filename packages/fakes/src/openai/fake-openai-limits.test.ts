import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI, { RateLimitError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from '../start.js';
import type { FakeOpenAIOptions, FakeOpenAIServer } from './fake-openai.js';
import { DEFAULT_MAX_TOKENS } from './fake-openai.js';
import { countChatPromptTokens, countResponseFormatTokens } from './tokens.js';

const MODEL = 'gpt-4o-mini';
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

const RESPONSE_FORMAT = {
  type: 'json_schema' as const,
  json_schema: {
    name: 'brand_facts',
    strict: true,
    schema: {
      type: 'object',
      properties: { website: { type: ['string', 'null'] }, country: { type: ['string', 'null'] } },
      required: ['website', 'country'],
      additionalProperties: false,
    },
  },
};

async function rateLimited(p: Promise<unknown>): Promise<RateLimitError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RateLimitError) return err;
    throw err;
  }
  throw new Error('expected a 429');
}

describe('fake OpenAI limits enforced per slice, as the provider quantizes them', () => {
  it('refuses a burst the minute window allows, and admits no more than one slice ahead of the rate', async () => {
    // 600 requests/min is 10 per second: a 1 s slice tolerates about 11 at once.
    const { server, client } = await start({ rpm: 600 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => client.chat.completions.create({ model: MODEL, messages: messagesFor(`Burst ${i}`) })),
    );
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' && o.reason instanceof RateLimitError ? [o.reason] : []));
    const admitted = server.ledger.filter((e) => e.admitted);
    const arrivals = server.ledger.entries().map((e) => e.at);
    const spanMs = Math.max(...arrivals) - Math.min(...arrivals);

    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length + admitted.length).toBe(30);
    expect(admitted.length).toBeGreaterThanOrEqual(11);
    // What was admitted fits 10/s over the burst's span plus one slice, plus the last one admitted.
    expect(admitted.length).toBeLessThanOrEqual(Math.floor((10 * (spanMs + 1000)) / 1000) + 1);
    // Refused requests counted too, so the provider counted all 30 in its minute window.
    expect(server.ledger.filter((e) => e.counted)).toHaveLength(30);
    for (const e of refused) {
      expect(e.type).toBe('requests');
      // The minute window is far from full: the slice refused it, with the real wait (the refused ones counted too).
      expect(e.message).toMatch(/Limit 600, Used \d+, Requested 1\. Please try again in \d+(\.\d+)?m?s\./);
      expect(Number(e.headers.get('retry-after-ms'))).toBeGreaterThan(0);
      expect(Number(e.headers.get('retry-after-ms'))).toBeLessThanOrEqual(3000 + spanMs);
    }
    expect(server.ledger.maxRequestsInAnyWindow(60_000)).toBeLessThan(600);
  });

  it('admits the same burst when slices are off (sliceMs: 0): only the minute window applies', async () => {
    const { server, client } = await start({ rpm: 600, sliceMs: 0 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => client.chat.completions.create({ model: MODEL, messages: messagesFor(`Burst ${i}`) })));
    expect(server.ledger.filter((e) => e.admitted)).toHaveLength(30);
  });

  it('admits a sequence paced at the rate, even with half a slice of tolerance', async () => {
    const { server, client } = await start({ rpm: 600, sliceTolerance: 0.5 });
    const t0 = Date.now();
    for (let i = 0; i < 15; i++) {
      // One request per 100 ms (10/s), by absolute schedule: timers are late, never early.
      await sleep(Math.max(0, t0 + i * 100 - Date.now()));
      await client.chat.completions.create({ model: MODEL, messages: messagesFor(`Paced ${i}`) });
    }
    expect(server.ledger.entries().map((e) => e.status)).toEqual(Array.from({ length: 15 }, () => 200));
  });

  it('paces tokens per slice too, and a client that waits the announced time is admitted', async () => {
    // 60,000 tokens/min is 1,000 per second; each call counts its prompt plus max_tokens 900.
    const { server, client } = await start({ tpm: 60_000 });
    const body = { model: MODEL, messages: messagesFor('Tokens'), max_tokens: 900 };
    await client.chat.completions.create(body);
    await client.chat.completions.create(body);
    const e = await rateLimited(client.chat.completions.create(body));
    expect(e.type).toBe('tokens');
    const perCall = countChatPromptTokens(body.messages) + 900;
    expect(e.message).toContain(`on tokens per min (TPM): Limit 60000, Used ${2 * perCall}, Requested ${perCall}. Please try again in`);
    const waitMs = Number(e.headers.get('retry-after-ms'));
    expect(waitMs).toBeGreaterThan(0);

    await sleep(waitMs);
    await client.chat.completions.create(body);
    expect(server.ledger.entries().map((x) => [x.status, x.rateLimitTokens])).toEqual([
      [200, perCall],
      [200, perCall],
      [429, perCall],
      [200, perCall],
    ]);
  });
});

describe('fake OpenAI counts tokens at admission as the prompt (with its schema) plus the output cap', () => {
  it('counts prompt + schema + max_completion_tokens (else max_tokens, else the default cap) and bills prompt + schema + actual completion', async () => {
    const { server, client } = await start({ defaultMaxTokens: 2000 });
    const messages = messagesFor('Acme');
    const schemaTokens = countResponseFormatTokens(RESPONSE_FORMAT);
    const prompt = countChatPromptTokens(messages) + schemaTokens;
    expect(schemaTokens).toBeGreaterThan(20);

    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages, response_format: RESPONSE_FORMAT, max_tokens: 700 })
      .withResponse();
    await client.chat.completions.create({ model: MODEL, messages, response_format: RESPONSE_FORMAT, max_tokens: 700, max_completion_tokens: 300 });
    await client.chat.completions.create({ model: MODEL, messages });

    expect(data.usage?.prompt_tokens).toBe(prompt);
    expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBe(10_000_000 - (prompt + 700));
    const [withMax, withBoth, withNone] = server.ledger.entries();
    expect(withMax).toMatchObject({ rateLimitTokens: prompt + 700, promptTokens: prompt, schemaTokens });
    expect(withBoth).toMatchObject({ rateLimitTokens: prompt + 300 });
    expect(withNone).toMatchObject({ rateLimitTokens: countChatPromptTokens(messages) + 2000, schemaTokens: 0 });
    // Billing follows the answer, not the cap.
    const completion = data.usage?.completion_tokens ?? 0;
    expect(completion).toBeLessThan(700);
    expect(withMax?.costMicros).toBe(Math.round(prompt * 0.15 + completion * 0.6));
  });

  it('counts DEFAULT_MAX_TOKENS for a request without a cap unless configured', async () => {
    const { server, client } = await start();
    const messages = messagesFor('Acme');
    await client.chat.completions.create({ model: MODEL, messages });
    expect(server.ledger.entries()[0]?.rateLimitTokens).toBe(countChatPromptTokens(messages) + DEFAULT_MAX_TOKENS);
  });
});

describe('fake OpenAI counts refused requests against its windows', () => {
  // rpm 1 per 1 s window, slices off so the minute window alone decides: A at 0 is admitted, B at
  // ~500 ms is refused, C at ~1100 ms comes after A left the window but while B would still be in it.
  it.each([
    { countRejected: true, cStatus: 429, bWait: (_a: number, _b: number) => 1000 },
    // Only to show the difference: without it a client hammering the provider is let back in sooner.
    { countRejected: false, cStatus: 200, bWait: (a: number, b: number) => a + 1000 - b },
  ])('countRejected: $countRejected', async ({ countRejected, cStatus, bWait }) => {
    const { server, client } = await start({ rpm: 1, windowMs: 1000, sliceMs: 0, countRejected });
    const ask = (brand: string) => client.chat.completions.create({ model: MODEL, messages: messagesFor(brand), max_tokens: 50 }).then(
      () => 200,
      (err: unknown) => (err instanceof RateLimitError ? 429 : -1),
    );
    const t0 = Date.now();
    expect(await ask('A')).toBe(200);
    await sleep(Math.max(0, t0 + 500 - Date.now()));
    expect(await ask('B')).toBe(429);
    const [a, b] = server.ledger.entries();
    await sleep(Math.max(0, (a?.at ?? t0) + 1100 - Date.now()));
    expect(await ask('C')).toBe(cStatus);

    expect(b).toMatchObject({ status: 429, admitted: false, counted: countRejected, rateLimitTokens: countChatPromptTokens(messagesFor('B')) + 50 });
    expect(b?.retryAfterMs).toBe(bWait(a?.at ?? 0, b?.at ?? 0));
    // The window as the provider counts it holds A and B together only when refused requests count.
    expect(server.ledger.maxRequestsInAnyWindow(1000, (e) => e.counted)).toBe(countRejected ? 2 : 1);
  });

  it('counts a request that fails after admission (5xx, reset) like a served one', async () => {
    const { server, client } = await start({ rpm: 2, windowMs: 10_000, sliceMs: 0 });
    server.injectFaults([{ status: 500 }, { kind: 'reset' }]);
    const ask = () => client.chat.completions.create({ model: MODEL, messages: messagesFor('Faulty') }).then(() => 200, () => 0);
    await ask();
    await ask();
    await ask();
    expect(server.ledger.entries().map((e) => [e.status, e.fault, e.admitted, e.counted])).toEqual([
      [500, 'status', true, true],
      [0, 'reset', true, true],
      [429, null, false, true],
    ]);
  });
});
