import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { recipeFingerprint } from './fingerprint.js';
import { loadRecipeFile } from './parse-recipe.js';
import { RecipeError } from './recipe-error.js';
import { deserializeRecipe, serializeRecipe } from './serialize-recipe.js';

const shipped = ['brand-facts.yaml', 'brand-profile.yaml'].map((name) => fileURLToPath(new URL(`../recipes/${name}`, import.meta.url)));

describe('serializeRecipe / deserializeRecipe', () => {
  it.each(shipped)('round-trips %s to an equal recipe with the same fingerprint', async (path) => {
    const recipe = await loadRecipeFile(path);
    const back = deserializeRecipe(serializeRecipe(recipe), 'stored');
    expect(back).toEqual(recipe);
    expect(recipeFingerprint(back)).toBe(recipeFingerprint(recipe));
  });

  it('round-trips every optional key of both step kinds', () => {
    const text = JSON.stringify({
      name: 'all',
      description: 'd',
      steps: [
        { id: 's', type: 'search', query: 'q', depth: 'fast', max_results: 3, include_domains: ['a.example'], exclude_domains: ['b.example'], skip_if: { present: ['hint.x'] } },
        {
          id: 'l', type: 'llm', system: 'sys', prompt: 'p', max_output_tokens: 100, model: 'm', temperature: 1, finalize: true, skip_if: { present: ['hint.y'] },
          fields: [{ name: 'n', type: 'number', description: 'N', required: true, min: 1, max: 2 }, { name: 't', type: 'list', description: 'T', max_length: 9 }],
        },
      ],
    });
    const recipe = deserializeRecipe(text, 'stored');
    expect(deserializeRecipe(serializeRecipe(recipe), 'stored')).toEqual(recipe);
  });

  it('checks what it reads back', () => {
    expect(() => deserializeRecipe('{"name":"x","steps":[]}', 'run r1')).toThrow(/^recipe run r1: steps: must list at least one step/);
    expect(() => deserializeRecipe('{"name":"x","steps":[]}', 'run r1')).toThrow(RecipeError);
  });
});
