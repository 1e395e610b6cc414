import type { RunStore } from '@brandq/runs';
import type { LoadedSource } from './load-source.js';

/**
 * Without --force, a brand that already has a result in any run of the same source is not
 * paid for again: it is reported as skipped with the newest run that holds its result, and
 * `loaded.alreadyProcessedIn` lists those runs (newest first).
 */
export async function skipAlreadyProcessed(runs: RunStore, loaded: LoadedSource): Promise<void> {
  const heldBy = await runs.resultsOfSource(loaded.sourceKey, loaded.brands.map((b) => b.key));
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
