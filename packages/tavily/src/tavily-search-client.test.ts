import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError, QuotaExhaustedError, RateLimitedError, TransientError, UnauthorizedError } from '@brandq/errors';
import { startFakeTavily, type FakeTavilyServer } from '@brandq/fakes';
import { TavilySearchClient } from './tavily-search-client.js';

let fake: FakeTavilyServer;

beforeAll(async () => {
  fake = await startFakeTavily({ apiKey: 'tvly-right', retryAfterHeaders: 'seconds' });
});
afterAll(() => fake.close());

const client = (apiKey = 'tvly-right', depth: 'basic' | 'advanced' = 'basic') =>
  new TavilySearchClient({ apiKey, baseUrl: fake.url, depth, maxResults: 5, timeoutSeconds: 2 });

describe('TavilySearchClient', () => {
  it('returns hits and the credits the response reported', async () => {
    const basic = await client().search('Acme Shoes brand company official website US');
    expect(basic.hits.length).toBeGreaterThan(0);
    expect(basic.hits[0]?.url).toMatch(/^https:\/\//);
    expect(basic).toMatchObject({ credits: 1, creditsReported: true });
    expect((await client('tvly-right', 'advanced').search('Acme Shoes brand')).credits).toBe(2);
  });

  it('keeps the HTTP status the SDK drops, and classifies each failure by it', async () => {
    const cases: Array<[Parameters<FakeTavilyServer['injectFaults']>[0][number], new (...a: never[]) => Error, number | undefined]> = [
      [{ status: 429, retryAfterMs: 3000 }, RateLimitedError, 429],
      [{ status: 432 }, QuotaExhaustedError, 432],
      [{ status: 433 }, QuotaExhaustedError, 433],
      [{ status: 500 }, TransientError, 500],
      [{ status: 400 }, BadRequestError, 400],
      [{ kind: 'reset' }, TransientError, undefined],
    ];
    for (const [fault, type, status] of cases) {
      fake.injectFaults([fault]);
      const error = await client().search('Acme Shoes brand').catch((e: unknown) => e);
      expect(error, JSON.stringify(fault)).toBeInstanceOf(type);
      expect((error as RateLimitedError).status).toBe(status);
      expect((error as RateLimitedError).provider).toBe('tavily');
    }
  });

  it('reads the wait of a 429 from its Retry-After header', async () => {
    fake.injectFaults([{ status: 429, retryAfterMs: 3000 }]);
    const error = (await client().search('Acme Shoes brand').catch((e: unknown) => e)) as RateLimitedError;
    expect(error.retryAfterMs).toBe(3000);
  });

  it('classifies a refused key as unauthorized', async () => {
    await expect(client('tvly-wrong').search('Acme Shoes brand')).rejects.toBeInstanceOf(UnauthorizedError);
  });
});
