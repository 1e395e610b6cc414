import { encode } from 'gpt-tokenizer';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from '../start.js';
import { expectedContent } from './completion.js';
import { expectedFacts } from './facts.js';
import type { FakeOpenAIOptions, FakeOpenAIServer } from './fake-openai.js';
import { expectedAnswer, pseudoBrand } from './schema-answer.js';
import { countChatPromptTokens, countResponseFormatTokens } from './tokens.js';

const MODEL = 'gpt-4o-mini';
let fake: FakeOpenAIServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeOpenAIOptions = {}): Promise<OpenAI> {
  fake = await startFakeOpenAI(opts);
  return new OpenAI({ apiKey: 'sk-test', baseURL: fake.url, maxRetries: 0 });
}

type Schema = Record<string, unknown>;

function responseFormat(schema: Schema, name = 'recipe_step') {
  return { type: 'json_schema' as const, json_schema: { name, schema, strict: true } };
}

function objectSchema(properties: Record<string, Schema>): Schema {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
}

function messagesFor(brand: string, urls: string[] = []): OpenAI.ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: 'You research brands. Answer with JSON only.' },
    { role: 'user', content: [`Brand: ${brand}`, ...urls.map((u) => `URL: ${u}`), 'Snippet: some text'].join('\n') },
  ];
}

async function ask(client: OpenAI, schema: Schema, messages: OpenAI.ChatCompletionMessageParam[], maxTokens?: number) {
  const res = await client.chat.completions.create({
    model: MODEL,
    messages,
    response_format: responseFormat(schema),
    ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
  });
  const content = res.choices[0]?.message.content ?? '';
  return { res, content };
}

const EVERY_TYPE = objectSchema({
  tagline: { type: 'string', description: 'One sentence' },
  employee_count: { type: 'integer', description: 'Headcount' },
  rating: { type: 'number', minimum: 1, maximum: 5 },
  is_public: { type: 'boolean' },
  keywords: { type: 'array', items: { type: 'string' } },
  tier: { type: ['string', 'null'], enum: ['budget', 'mid', 'luxury', null] },
  slogan: { type: ['string', 'null'] },
  stores: { type: ['integer', 'null'], minimum: 10, maximum: 12 },
  careers_url: { type: 'string' },
  source_urls: { type: 'array', items: { type: 'string' } },
});

/** brandq's brand-facts schema (packages/llm), copied: the fakes do not depend on brandq. */
const BRAND_FACTS_SCHEMA = objectSchema({
  website: { type: ['string', 'null'], description: 'Official website URL' },
  category: { type: ['string', 'null'], description: 'Product category, a few words' },
  description: { type: ['string', 'null'], description: 'One or two factual sentences' },
  country: { type: ['string', 'null'], description: 'Country of origin' },
  founded_year: { type: ['integer', 'null'] },
  sources: { type: 'array', items: { type: 'string' }, description: 'URLs of the search results used' },
});

const BRANDS = Array.from({ length: 40 }, (_, i) => `Brand No ${i}`);

describe('fake OpenAI structured output: any json_schema', () => {
  it('answers exactly the schema properties with a value of each type, billed like any answer', async () => {
    const client = await start();
    const urls = ['https://a.example.org/1', 'https://b.example.org/2'];
    const messages = messagesFor('Acme Rockets', urls);
    const { res, content } = await ask(client, EVERY_TYPE, messages);
    const answer = JSON.parse(content) as Record<string, unknown>;

    expect(answer).toEqual(expectedAnswer(EVERY_TYPE, messages));
    expect(Object.keys(answer)).toEqual(Object.keys(EVERY_TYPE['properties'] as object));
    expect(answer['tagline']).toEqual(expect.stringContaining('Acme Rockets'));
    expect(answer['tagline']).toEqual(expect.stringContaining('tagline'));
    expect(Number.isInteger(answer['employee_count'])).toBe(true);
    expect(answer['employee_count']).toBeGreaterThanOrEqual(0);
    expect(answer['employee_count']).toBeLessThanOrEqual(100);
    expect(typeof answer['is_public']).toBe('boolean');
    expect(answer['keywords']).toEqual(expect.arrayContaining([expect.any(String)]));
    expect((answer['keywords'] as string[]).length).toBeGreaterThanOrEqual(2);
    expect((answer['keywords'] as string[]).length).toBeLessThanOrEqual(3);
    expect(new Set(answer['keywords'] as string[]).size).toBe((answer['keywords'] as string[]).length);
    expect(['budget', 'mid', 'luxury']).toContain(answer['tier']);
    expect(answer['slogan']).toEqual(expect.stringContaining('Acme Rockets'));
    expect([10, 11, 12]).toContain(answer['stores']);
    expect(answer['careers_url']).toBe('https://acme-rockets.example.com/careers-url');
    expect(answer['source_urls']).toEqual(urls);

    const promptTokens = countChatPromptTokens(messages) + countResponseFormatTokens(responseFormat(EVERY_TYPE));
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(res.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: encode(content).length,
      total_tokens: promptTokens + encode(content).length,
    });
  });

  it('picks enum values and stays within minimum..maximum for every brand, never answering null', async () => {
    const client = await start();
    const schema = objectSchema({
      tier: { type: ['string', 'null'], enum: ['budget', 'mid', 'luxury', null] },
      stars: { type: 'integer', minimum: 1, maximum: 5 },
      score: { type: ['number', 'null'], minimum: 0.5, maximum: 2.5 },
      percent: { type: 'number' },
      below_zero: { type: 'integer', maximum: -10 },
    });
    const seen = { tier: new Set<unknown>(), stars: new Set<unknown>() };
    for (const brand of BRANDS) {
      const answer = JSON.parse((await ask(client, schema, messagesFor(brand))).content) as Record<string, number | string>;
      expect(['budget', 'mid', 'luxury']).toContain(answer['tier']);
      expect([1, 2, 3, 4, 5]).toContain(answer['stars']);
      const score = answer['score'] as number;
      expect(score).toBeGreaterThanOrEqual(0.5);
      expect(score).toBeLessThanOrEqual(2.5);
      expect(Math.round(score * 10) / 10).toBe(score);
      const percent = answer['percent'] as number;
      expect(percent).toBeGreaterThanOrEqual(0);
      expect(percent).toBeLessThanOrEqual(100);
      expect(Math.round(percent * 10) / 10).toBe(percent);
      expect(answer['below_zero']).toBeLessThanOrEqual(-10);
      expect(answer['below_zero']).toBeGreaterThanOrEqual(-110);
      seen.tier.add(answer['tier']);
      seen.stars.add(answer['stars']);
    }
    // Spread over the choices, not one constant.
    expect(seen.tier.size).toBe(3);
    expect(seen.stars.size).toBeGreaterThan(2);
  });

  it('answers the same prompt identically and another brand differently', async () => {
    const client = await start();
    const first = await ask(client, EVERY_TYPE, messagesFor('Globex'));
    const again = await ask(client, EVERY_TYPE, messagesFor('Globex'));
    const other = await ask(client, EVERY_TYPE, messagesFor('Initech'));
    expect(again.content).toBe(first.content);
    expect(other.content).not.toBe(first.content);
    const a = JSON.parse(first.content) as Record<string, unknown>;
    const b = JSON.parse(other.content) as Record<string, unknown>;
    expect(b['tagline']).not.toBe(a['tagline']);
    expect(b['careers_url']).not.toBe(a['careers_url']);
    // Fields of one brand are hashed apart too: two integer fields of 0..100 rarely agree for all brands.
    const pairs = objectSchema({ left: { type: 'integer' }, right: { type: 'integer' } });
    const equal = BRANDS.slice(0, 10).filter((brand) => {
      const x = expectedAnswer(pairs, messagesFor(brand));
      return x['left'] === x['right'];
    });
    expect(equal.length).toBeLessThan(3);
  });

  it('answers a prompt without a Brand: line about a pseudo-brand hashed from the last user message', async () => {
    const client = await start();
    const schema = objectSchema({ summary: { type: 'string' }, score: { type: 'integer' } });
    const prompt = (text: string): OpenAI.ChatCompletionMessageParam[] => [
      { role: 'system', content: 'Summarise.' },
      { role: 'user', content: text },
    ];
    const first = await ask(client, schema, prompt('Tell me about the shoe shop on Main Street.'));
    const again = await ask(client, schema, prompt('Tell me about the shoe shop on Main Street.'));
    const other = await ask(client, schema, prompt('Tell me about the bakery by the station.'));

    const brand = pseudoBrand('Tell me about the shoe shop on Main Street.');
    expect(brand).toMatch(/^[A-Z][a-z]{7}$/);
    const answer = JSON.parse(first.content) as Record<string, unknown>;
    expect(answer).toEqual(expectedAnswer(schema, prompt('Tell me about the shoe shop on Main Street.')));
    expect(answer['summary']).toEqual(expect.stringContaining(brand));
    expect(again.content).toBe(first.content);
    expect(other.content).not.toBe(first.content);
    expect(JSON.parse(other.content)['summary']).toEqual(expect.stringContaining(pseudoBrand('Tell me about the bakery by the station.')));
    // The ledger still names no brand: only a Brand: line does.
    expect(fake?.ledger.entries().map((e) => e.brand)).toEqual([null, null, null]);
  });

  it('answers the brand-facts schema exactly as before, unknown founding years included', async () => {
    const client = await start();
    const urls = Array.from({ length: 7 }, (_, i) => `https://s${i}.example.org/`);
    const unknownYear = BRANDS.find((b) => expectedFacts(b).founded_year === null);
    expect(unknownYear).toBeDefined();
    for (const brand of ['Acme Rockets', unknownYear ?? '']) {
      const { content } = await ask(client, BRAND_FACTS_SCHEMA, messagesFor(brand, urls));
      expect(content).toBe(expectedContent({ brand, urls: urls.slice(0, 5) }));
      expect(expectedAnswer(BRAND_FACTS_SCHEMA, messagesFor(brand, urls))).toEqual(JSON.parse(content));
    }
  });

  it('gives a brand-facts name its own type when the schema asks for a different one', () => {
    const schema = objectSchema({
      founded_year: { type: 'string' },
      country: { type: 'string', enum: ['Atlantis', 'Lemuria'] },
      website: { type: 'integer', minimum: 3, maximum: 3 },
    });
    const facts = expectedFacts('Acme');
    const answer = expectedAnswer(schema, messagesFor('Acme'));
    expect(answer['founded_year']).toEqual(expect.stringContaining('founded year of Acme'));
    expect(['Atlantis', 'Lemuria']).toContain(answer['country']);
    expect(answer['country']).not.toBe(facts.country);
    expect(answer['website']).toBe(3);
  });

  it('keeps max_tokens truncation, scripted answers and bad-content faults for schema requests', async () => {
    const client = await start({ answers: { Hostile: '=HYPERLINK("http://evil")' } });
    const messages = messagesFor('Northwind');
    const cut = await ask(client, EVERY_TYPE, messages, 5);
    expect(cut.res.choices[0]?.finish_reason).toBe('length');
    expect(cut.res.usage?.completion_tokens).toBe(5);
    expect(JSON.stringify(expectedAnswer(EVERY_TYPE, messages)).startsWith(cut.content)).toBe(true);

    expect((await ask(client, EVERY_TYPE, messagesFor('Hostile'))).content).toBe('=HYPERLINK("http://evil")');

    fake?.injectFaults([{ kind: 'bad-json-content' }]);
    const bad = await ask(client, EVERY_TYPE, messages);
    expect(bad.content).toBe('Sure! Here is what I found about Northwind: {"website": "https://');
  });
});
