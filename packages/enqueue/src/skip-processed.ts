import type { RunStore } from '@brandq/runs';
import type { LoadedSource } from './load-source.js';

/**
 * Without --force, a brand that already has a result in the latest run of the same source
 * is not paid for again: it is reported as skipped with the run that holds its result.
 */
export async function skipAlreadyProcessed(runs: RunStore, loaded: LoadedSource): Promise<void> {
  const previousRun = await runs.latestRunForSource(loaded.sourceKey);
  if (!previousRun) return;
  const done = await runs.keysWithResults(previousRun, loaded.brands.map((b) => b.key));
  const kept = [];
  for (const brand of loaded.brands) {
    if (done.has(brand.key)) {
      loaded.skipped.push({
        rowNumber: brand.rowNumber,
        name: brand.name,
        reason: 'already_processed',
        message: `row ${brand.rowNumber}: "${brand.name}" already has a result in run ${previousRun} (use --force to reprocess)`,
      });
    } else kept.push(brand);
  }
  loaded.brands = kept;
}
