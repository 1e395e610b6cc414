import { readFileSync } from 'node:fs';
import { parseRecipe } from './parse-recipe.js';
import type { Recipe } from './recipe.js';

let shipped: Recipe | undefined;

/** The shipped brand-facts recipe: the one-search, one-call enrichment brandq has always done. */
export function defaultRecipe(): Recipe {
  // recipes/ sits next to src/ and dist/ alike, so this path holds for source and build.
  shipped ??= parseRecipe(readFileSync(new URL('../recipes/brand-facts.yaml', import.meta.url), 'utf8'), 'brand-facts.yaml');
  return structuredClone(shipped);
}
