import { tavily } from '@tavily/core';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeTavily } from '../start.js';
import type { FakeTavilyOptions, FakeTavilyServer } from './fake-tavily.js';
import { brandFromQuery, expectedSearchResults } from './search-results.js';

let fake: FakeTavilyServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeTavilyOptions = {}) {
  fake = await startFakeTavily(opts);
  return { server: fake, client: tavily({ apiKey: opts.apiKey ?? 'tvly-test', apiBaseURL: fake.url }) };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('fake Tavily through @tavily/core', () => {
  it('returns deterministic results and bills 1 credit for basic, 2 for advanced', async () => {
    const { server, client } = await start();
    const query = '"Acme Rockets" brand official website';
    const basic = await client.search(query, { includeUsage: true });
    expect(basic.usage).toEqual({ credits: 1 });
    expect(basic.images).toEqual([]);
    const expected = expectedSearchResults(query);
    expect(basic.results.map((r) => ({ url: r.url, title: r.title, content: r.content, score: r.score }))).toEqual(
      expected.map((r) => ({ url: r.url, title: r.title, content: r.content, score: r.score })),
    );
    expect(basic.results[0]?.url).toBe('https://acme-rockets.example.com/about');
    expect(basic.results[0]?.content).toContain('Acme Rockets');

    const advanced = await client.search(query, { searchDepth: 'advanced', includeUsage: true, maxResults: 3 });
    expect(advanced.usage).toEqual({ credits: 2 });
    expect(advanced.results).toHaveLength(3);

    const noUsage = await client.search(query, { searchDepth: 'fast' });
    expect(noUsage.usage).toBeUndefined();

    expect(server.ledger.entries().map((e) => [e.searchDepth, e.credits, e.costMicros])).toEqual([
      ['basic', 1, 8000],
      ['advanced', 2, 16000],
      ['fast', 1, 8000],
    ]);
    expect(server.ledger.billedMicros()).toBe(32000);
    expect(server.ledger.summary().credits).toBe(4);
    expect(server.ledger.requestsFor('acme rockets')).toHaveLength(3);
    expect(server.ledger.entries()[0]?.brand).toBe('Acme Rockets');
  });

  it('surfaces 432 and 433 faults as SDK errors with the Tavily message, unbilled', async () => {
    const { server, client } = await start({ costPerCredit: 0.005 });
    server.injectFaults([{ status: 432 }, { status: 433 }]);
    expect((await rejection(client.search('Globex'))).message).toContain("exceeds your plan's set usage limit");
    expect((await rejection(client.search('Globex'))).message).toContain('pay-as-you-go limit');
    await client.search('Globex');
    expect(server.ledger.entries().map((e) => e.status)).toEqual([432, 433, 200]);
    expect(server.ledger.billedMicros()).toBe(5000);
  });

  it('refuses a wrong key with the Tavily 401 body', async () => {
    const { server } = await start({ apiKey: 'tvly-right' });
    const wrong = tavily({ apiKey: 'tvly-wrong', apiBaseURL: server.url });
    expect((await rejection(wrong.search('x'))).message).toBe('Unauthorized: missing or invalid API key.');
    const res = await fetch(`${server.url}/search`, { method: 'POST', body: '{"query":"x"}' });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ detail: { error: 'Unauthorized: missing or invalid API key.' } });
  });

  it('rate-limits on its window with a 429 announcing the wait', async () => {
    // The sliding window alone (slices are tested in the OpenAI fake's limit tests).
    const { server, client } = await start({ rpm: 1, windowMs: 10_000, sliceMs: 0, retryAfterHeaders: 'seconds' });
    await client.search('Initech');
    expect((await rejection(client.search('Initech'))).message).toContain('excessive requests');
    const rejected = server.ledger.entries()[1];
    expect(rejected).toMatchObject({ status: 429, admitted: false });
    expect(rejected?.retryAfterMs).toBeGreaterThan(0);
    expect(rejected?.retryAfterMs).toBeLessThanOrEqual(10_000);

    const raw = await fetch(`${server.url}/search`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'Initech' }),
    });
    expect(raw.status).toBe(429);
    expect(raw.headers.get('retry-after')).toMatch(/^([1-9]|10)$/);
  });

  it('validates the request and matches brand-filtered faults by query text', async () => {
    const { server, client } = await start({ knownBrands: ['Hooli', 'Hooli XYZ'] });
    server.injectFaults([{ status: 500, brand: 'hooli xyz' }]);
    await client.search('Hooli company'); // brand filter does not match this query
    expect((await rejection(client.search('Hooli XYZ products'))).message).toBe('Internal Server Error');
    expect(server.ledger.entries().map((e) => [e.brand, e.status])).toEqual([
      ['Hooli', 200],
      ['Hooli XYZ', 500],
    ]);

    const bad = await fetch(`${server.url}/search`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'x', search_depth: 'deep' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: { error: string } }).detail.error).toContain('Invalid search depth');
  });

  it('finds the brand in a query', () => {
    expect(brandFromQuery('"Café Müller" official site')).toBe('Café Müller');
    expect(brandFromQuery('nike shoes', ['Nike', 'Nike SB'])).toBe('Nike');
    expect(brandFromQuery('plain words')).toBeNull();
    expect(expectedSearchResults('"Café Müller"')[0]?.url).toBe('https://cafe-muller.example.com/about');
  });
});
