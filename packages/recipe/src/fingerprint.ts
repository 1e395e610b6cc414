import { createHash } from 'node:crypto';
import type { Recipe } from './recipe.js';

/**
 * Bump when the meaning of a recipe changes without the recipe changing (how templates render,
 * how answers are cleaned): answers cached under older fingerprints are then not reused.
 */
export const RECIPE_SEMANTICS = 'recipe/1';

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 (hex) of the normalized recipe's canonical JSON: equal for equal recipes however they were written. */
export function recipeFingerprint(recipe: Recipe): string {
  // A step's tier is how its calls are paid for, not what they ask: switching it keeps the answers.
  const asked = { ...recipe, steps: recipe.steps.map((step) => (step.type === 'llm' ? { ...step, tier: undefined } : step)) };
  return createHash('sha256').update(canonicalJson({ semantics: RECIPE_SEMANTICS, recipe: asked })).digest('hex');
}
