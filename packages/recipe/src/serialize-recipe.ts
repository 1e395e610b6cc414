import { parseRecipe } from './parse-recipe.js';
import type { Recipe, RecipeField, RecipeStep } from './recipe.js';

/** The field in the file format (snake_case keys). */
function fieldFile(field: RecipeField): Record<string, unknown> {
  const { maxLength, ...rest } = field;
  return { ...rest, max_length: maxLength };
}

function stepFile(step: RecipeStep): Record<string, unknown> {
  if (step.type === 'search') {
    const { maxResults, includeDomains, excludeDomains, skipIf, ...rest } = step;
    return { ...rest, max_results: maxResults, include_domains: includeDomains, exclude_domains: excludeDomains, skip_if: skipIf };
  }
  const { maxOutputTokens, skipIf, fields, ...rest } = step;
  return { ...rest, fields: fields.map(fieldFile), max_output_tokens: maxOutputTokens, skip_if: skipIf };
}

/** The recipe as a JSON recipe file, for storing with a run: `deserializeRecipe` reads it back checked. */
export function serializeRecipe(recipe: Recipe): string {
  return JSON.stringify({ ...recipe, steps: recipe.steps.map(stepFile) });
}

/** Reads back a stored recipe; it is checked again like any recipe file (a stored one may predate today's rules). */
export function deserializeRecipe(text: string, origin: string): Recipe {
  return parseRecipe(text, origin);
}
