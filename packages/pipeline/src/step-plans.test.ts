import { describe, expect, it } from 'vitest';
import { parseRecipe, type LlmStep } from '@brandq/recipe';
import { planLlm } from './step-plans.js';

const DEFAULTS = { searchDepth: 'basic' as const, searchMaxResults: 5, model: 'gpt-4o-mini', maxOutputTokens: 400 };
const CTX = { brand: 'Acme', hints: {}, results: {}, fields: {} };

/** An LLM step with one field `website` of this type and options, the prompt the same every time. */
function stepWith(field: string): LlmStep {
  const recipe = parseRecipe(['name: r', 'steps:', '  - id: s', '    type: llm', '    prompt: "Brand: {{brand}}"', `    fields: [${field}]`].join('\n'), 'r.yaml');
  return recipe.steps[0] as LlmStep;
}

describe('planLlm cache keys', () => {
  it('differ whenever the cleaned answer could differ, even where the JSON schema is the same', () => {
    const key = (field: string) => planLlm(stepWith(field), CTX, DEFAULTS).cacheKey;
    const asString = key('{ name: website, type: string, description: the site }');
    // The same schema type: a url and a string field, a list and a sources field.
    expect(key('{ name: website, type: url, description: the site }')).not.toBe(asString);
    // A length cap is not in the schema at all.
    expect(key('{ name: website, type: string, description: the site, max_length: 10 }')).not.toBe(asString);
    expect(key('{ name: website, type: list, description: the site }')).not.toBe(key('{ name: website, type: list, description: the site, max_length: 20 }'));
    // The same step asks the same question: the same key.
    expect(key('{ name: website, type: string, description: the site }')).toBe(asString);
  });
});
