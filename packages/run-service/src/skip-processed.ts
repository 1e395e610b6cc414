import { defaultRecipe, recipeFingerprint, type Recipe } from '@brandq/recipe';
import type { RunStore } from '@brandq/runs';
import type { LoadedSource } from './load-source.js';

/**
 * Without --force, a brand that already has a result from the same recipe in a run of the
 * same source is not paid for again: it is reported as skipped with the newest run that
 * holds its result, and `loaded.alreadyProcessedIn` lists those runs (newest first). A
 * result of another recipe answers other questions: that brand is done again.
 */
export async function skipAlreadyProcessed(runs: RunStore, loaded: LoadedSource, recipe: Recipe): Promise<void> {
  const found = await runs.resultsOfSource(loaded.sourceKey, loaded.brands.map((b) => b.key));
  const fingerprint = recipeFingerprint(recipe);
  // Results from before recipes were answered by the default recipe.
  const legacy = recipeFingerprint(defaultRecipe());
  const keysByRun = new Map<string, string[]>();
  for (const [key, runId] of found) {
    const keys = keysByRun.get(runId);
    if (keys) keys.push(key);
    else keysByRun.set(runId, [key]);
  }
  const heldBy = new Map<string, string>();
  for (const [runId, keys] of keysByRun) {
    const results = await runs.getResults(runId, keys);
    keys.forEach((key, i) => {
      if ((results[i]?.recipe ?? legacy) === fingerprint) heldBy.set(key, runId);
    });
  }
  if (heldBy.size === 0) return;
  const kept = [];
  for (const brand of loaded.brands) {
    const runId = heldBy.get(brand.key);
    if (runId === undefined) kept.push(brand);
    else {
      loaded.skipped.push({
        rowNumber: brand.rowNumber,
        name: brand.name,
        reason: 'already_processed',
        message: `row ${brand.rowNumber}: "${brand.name}" already has a result in run ${runId} (use --force to reprocess)`,
      });
    }
  }
  loaded.brands = kept;
  loaded.alreadyProcessedIn = [...new Set(heldBy.values())];
}
