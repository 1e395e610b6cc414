import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError, CapacityUnavailableError, QuotaExhaustedError, RateLimitedError, TransientError, UnauthorizedError } from '@brandq/errors';
import { countChatPromptTokens, expectedFacts, startFakeOpenAI, type FakeOpenAIServer } from '@brandq/fakes';
import { defaultRecipe, renderMessages, responseFormatOf, type LlmStep } from '@brandq/recipe';
import { LlmBadAnswer, LlmClient, type JsonSchemaFormat } from './llm-client.js';
import { countPromptTokens } from './token-count.js';

let fake: FakeOpenAIServer;
beforeAll(async () => {
  fake = await startFakeOpenAI({ apiKey: 'sk-right', retryAfterHeaders: 'none' });
});
afterAll(() => fake.close());

const client = (apiKey = 'sk-right') =>
  new LlmClient({ apiKey, baseURL: fake.url, model: 'gpt-4o-mini', maxOutputTokens: 400, timeoutMs: 5000 });
const hits = [{ title: 'Acme', url: 'https://acme.example.com/about', content: 'Acme makes shoes.' }];
// The default recipe's extraction step, as the pipeline sends it.
const step = defaultRecipe().steps.find((s): s is LlmStep => s.type === 'llm')!;
const format = responseFormatOf(step) as JsonSchemaFormat;
const promptOf = (repairNote?: string) => renderMessages(step, { brand: 'Acme', hints: { country: 'US' }, results: { search: hits }, fields: {} }, repairNote);
const messages = promptOf();
const request = (over: { maxOutputTokens?: number; repairNote?: string } = {}) => ({
  messages: over.repairNote ? promptOf(over.repairNote) : messages,
  model: 'gpt-4o-mini',
  maxOutputTokens: over.maxOutputTokens ?? 400,
  temperature: 0,
  responseFormat: format,
});

describe('LlmClient', () => {
  it('returns the JSON answer and the usage the provider billed', async () => {
    const answer = await client().complete(request());
    if (answer instanceof LlmBadAnswer) throw answer.error;
    const expected = expectedFacts('Acme');
    expect(answer.json).toMatchObject({ category: expected.category, country: expected.country, founded_year: expected.founded_year, sources: ['https://acme.example.com/about'] });
    expect(answer.usage.promptTokens).toBeGreaterThan(countChatPromptTokens(messages as never));
    expect(answer.headers.get('x-ratelimit-limit-requests')).not.toBeNull();
  });

  it('counts the messages exactly as the provider does', () => {
    expect(countPromptTokens(messages)).toBe(countChatPromptTokens(messages as never));
  });

  it('never counts a request below what the provider bills: the response schema is input too', async () => {
    const answer = await client().complete(request());
    expect(client().promptTokensOf(messages, format)).toBeGreaterThanOrEqual(answer.usage.promptTokens);
    expect(client().promptTokensOf(messages, format)).toBeLessThan(answer.usage.promptTokens + 10);
  });

  it('reports a truncated answer as bad output, with its usage', async () => {
    const answer = await client().complete(request({ maxOutputTokens: 16 }));
    expect(answer).toBeInstanceOf(LlmBadAnswer);
    expect((answer as LlmBadAnswer).error.message).toMatch(/truncated/);
    expect((answer as LlmBadAnswer).usage.completionTokens).toBe(16);
  });

  it('reports invalid JSON as bad output and keeps the raw answer', async () => {
    fake.injectFaults([{ kind: 'bad-json-content' }]);
    const answer = await client().complete(request());
    expect(answer).toBeInstanceOf(LlmBadAnswer);
    expect((answer as LlmBadAnswer).error.details.rawAnswer).toEqual(expect.any(String));
  });

  it('classifies provider failures once, with the wait a 429 asked for', async () => {
    fake.injectFaults([{ status: 429, retryAfterMs: 2500 }]);
    const limited = (await client().complete(request()).catch((e: unknown) => e)) as RateLimitedError;
    expect(limited).toBeInstanceOf(RateLimitedError);
    // No retry headers here: the wait comes from "Please try again in 2.5s".
    expect(limited.retryAfterMs).toBe(2500);

    const cases: Array<[Parameters<FakeOpenAIServer['injectFaults']>[0][number], new (...a: never[]) => Error]> = [
      [{ status: 429, code: 'insufficient_quota' }, QuotaExhaustedError],
      // Flex capacity refused: not a rate limit (no fleet cooldown), not billed.
      [{ status: 429, code: 'resource_unavailable' }, CapacityUnavailableError],
      [{ status: 402 }, QuotaExhaustedError],
      [{ status: 500 }, TransientError],
      [{ status: 400 }, BadRequestError],
      [{ kind: 'reset' }, TransientError],
    ];
    for (const [fault, type] of cases) {
      fake.injectFaults([fault]);
      await expect(client().complete(request()), JSON.stringify(fault)).rejects.toBeInstanceOf(type);
    }
    await expect(client('sk-wrong').complete(request())).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('does not mistake the rate window reset on a 5xx for a wait', async () => {
    fake.injectFaults([{ status: 500 }]);
    const error = (await client().complete(request()).catch((e: unknown) => e)) as TransientError;
    expect(error).toBeInstanceOf(TransientError);
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('puts a repair note into the brand message, so the answer is still about the brand', async () => {
    const repair = request({ repairNote: 'answer is not valid JSON' });
    expect(repair.messages.filter((m) => m.role === 'user')).toHaveLength(1);
    const answer = await client().complete(repair);
    if (answer instanceof LlmBadAnswer) throw answer.error;
    expect(answer.json).toMatchObject({ category: expectedFacts('Acme').category });
  });
});
