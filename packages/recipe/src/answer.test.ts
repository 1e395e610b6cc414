import { describe, expect, it } from 'vitest';
import { parseAnswer, responseFormatOf } from './answer.js';
import { defaultRecipe } from './default-recipe.js';
import { parseRecipe } from './parse-recipe.js';
import type { LlmStep } from './recipe.js';

function llmStep(fields: string): LlmStep {
  const recipe = parseRecipe(`name: t\nsteps:\n  - id: my-step\n    type: llm\n    prompt: p\n    fields:\n${fields}`, 't.yaml');
  return recipe.steps[0] as LlmStep;
}

const facts = defaultRecipe().steps[1] as LlmStep;
const shown = new Set(['https://acme.example/', 'https://news.example/acme?id=1']);
const answer = (overrides: Record<string, unknown>) => ({
  website: null, category: null, description: null, country: null, founded_year: null, sources: [], ...overrides,
});

describe('responseFormatOf', () => {
  it('is today\'s brand-facts schema for the default recipe, with every property described', () => {
    expect(responseFormatOf(facts)).toEqual({
      type: 'json_schema',
      json_schema: {
        name: 'facts',
        strict: true,
        schema: {
          type: 'object',
          additionalProperties: false,
          required: ['website', 'category', 'description', 'country', 'founded_year', 'sources'],
          properties: {
            website: { type: ['string', 'null'], description: 'Official website URL' },
            category: { type: ['string', 'null'], description: 'Product category, a few words' },
            description: { type: ['string', 'null'], description: 'One or two factual sentences' },
            country: { type: ['string', 'null'], description: 'Country of origin' },
            founded_year: { type: ['integer', 'null'], description: 'Year the brand was founded', minimum: 1000, maximum: 2100 },
            sources: { type: ['array', 'null'], items: { type: 'string' }, description: 'URLs of the search results used' },
          },
        },
      },
    });
  });

  it('makes required fields non-nullable, keeps null in a nullable enum and names the schema after the step', () => {
    const step = llmStep(`      - { name: tier, type: enum, description: T, values: [a, b] }
      - { name: tier2, type: enum, description: T2, values: [a, b], required: true }
      - { name: ok, type: boolean, description: O, required: true }
      - { name: tags, type: list, description: Tags, required: true }
      - { name: ratio, type: number, description: R, min: 0.5 }
`);
    const format = responseFormatOf(step);
    expect(format.json_schema.name).toBe('my_step');
    expect(format.json_schema.schema.properties).toEqual({
      tier: { type: ['string', 'null'], enum: ['a', 'b', null], description: 'T' },
      tier2: { type: 'string', enum: ['a', 'b'], description: 'T2' },
      ok: { type: 'boolean', description: 'O' },
      tags: { type: 'array', items: { type: 'string' }, description: 'Tags' },
      ratio: { type: ['number', 'null'], minimum: 0.5, description: 'R' },
    });
  });
});

describe('parseAnswer', () => {
  it('cleans a good answer: trimmed text, http(s) URL, integer in range, only shown sources', () => {
    const outcome = parseAnswer(
      facts,
      answer({
        website: ' https://acme.example ',
        category: '  Shoes\u0007 ',
        description: '',
        country: 'France',
        founded_year: 1990,
        sources: ['https://acme.example', 'https://invented.example/', 'javascript:alert(1)', '=IMPORTXML("x")', 'https://news.example/acme?id=1', 'https://acme.example/'],
        extra: 'ignored',
      }),
      shown,
    );
    expect(outcome).toEqual({
      ok: true,
      values: {
        website: 'https://acme.example/',
        category: 'Shoes',
        description: null,
        country: 'France',
        founded_year: 1990,
        sources: ['https://acme.example/', 'https://news.example/acme?id=1'],
      },
    });
  });

  it('turns unusable values into null: a non-web URL, a year out of range, no shown source', () => {
    const outcome = parseAnswer(facts, answer({ website: 'javascript:alert(1)', founded_year: 3000, sources: ['https://other.example/'] }), shown);
    expect(outcome).toEqual({ ok: true, values: answer({ sources: null }) });
  });

  it('caps text at the field\'s length with an ellipsis', () => {
    const outcome = parseAnswer(facts, answer({ category: 'x'.repeat(150), description: 'y'.repeat(1001) }), shown);
    expect(outcome.ok && outcome.values.category).toBe(`${'x'.repeat(99)}…`);
    expect(outcome.ok && (outcome.values.description as string).length).toBe(1000);
  });

  it('treats a missing optional property as null', () => {
    expect(parseAnswer(facts, { country: 'Italy' }, shown)).toEqual({ ok: true, values: answer({ country: 'Italy', sources: null }) });
  });

  it.each([
    ['founded_year', '1990', /founded_year must be a number/],
    ['founded_year', 1990.5, /founded_year must be an integer/],
    ['category', 42, /category must be a string/],
    ['website', ['https://acme.example'], /website must be a URL string/],
    ['sources', 'https://acme.example/', /sources must be a list of URL strings/],
    ['sources', [1, 2], /sources must be a list of URL strings/],
  ])('rejects %s of the wrong JSON type (%j), naming the field', (name, value, message) => {
    expect(parseAnswer(facts, answer({ [name]: value }), shown)).toEqual({ ok: false, message: expect.stringMatching(message) });
  });

  it('rejects an answer that is not a JSON object', () => {
    for (const json of [null, 'text', [1], 3]) expect(parseAnswer(facts, json, shown).ok).toBe(false);
  });

  const classify = llmStep(`      - { name: segment, type: enum, description: S, values: [Mass, premium, luxury], required: true }
      - { name: score, type: integer, description: N, min: 0, max: 100, required: true }
      - { name: ratio, type: number, description: R, min: 0, max: 1 }
      - { name: tags, type: list, description: T, max_length: 5 }
      - { name: online, type: boolean, description: O }
`);

  it('matches enum values case-insensitively and answers in the declared spelling', () => {
    expect(parseAnswer(classify, { segment: ' MASS ', score: 5 }, shown)).toEqual({
      ok: true,
      values: { segment: 'Mass', score: 5, ratio: null, tags: null, online: null },
    });
  });

  it('keeps up to 50 cleaned, non-empty list items, each capped', () => {
    const outcome = parseAnswer(classify, { segment: 'luxury', score: 1, tags: ['  a ', '', 'abcdefgh', ...Array.from({ length: 60 }, (_, i) => `t${i}`)] }, shown);
    expect(outcome.ok && outcome.values.tags).toEqual(['a', 'abcd…', ...Array.from({ length: 48 }, (_, i) => `t${i}`)]);
  });

  it('keeps finite numbers in range and booleans', () => {
    expect(parseAnswer(classify, { segment: 'luxury', score: 1, ratio: 0.25, online: true }, shown)).toMatchObject({ ok: true, values: { ratio: 0.25, online: true } });
    expect(parseAnswer(classify, { segment: 'luxury', score: 1, ratio: 1.5 }, shown)).toMatchObject({ ok: true, values: { ratio: null } });
    expect(parseAnswer(classify, { segment: 'luxury', score: 1, online: 'yes' }, shown)).toEqual({ ok: false, message: 'online must be true, false or null' });
  });

  it.each([
    ['null', { segment: null, score: 50 }, 'segment'],
    ['missing', { score: 50 }, 'segment'],
    ['not one of the values', { segment: 'budget', score: 50 }, 'segment'],
    ['out of range', { segment: 'mass', score: 101 }, 'score'],
  ])('makes the answer invalid when a required field is %s', (_, json, name) => {
    expect(parseAnswer(classify, json, shown)).toEqual({ ok: false, message: `${name} is required: give a valid value, not null` });
  });

  it('names every problem of an answer in one message', () => {
    const outcome = parseAnswer(classify, { segment: null, score: 'high' }, shown);
    expect(outcome).toEqual({ ok: false, message: 'segment is required: give a valid value, not null; score must be a number or null' });
  });
});
