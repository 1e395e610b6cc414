import type { LoadedSource } from './load-source.js';

/** The answer to a source with no brand left to enqueue: no run is created. */
export interface NothingToDo {
  kind: 'nothing_to_do';
  /** One readable sentence for the CLI and the board. */
  message: string;
}

/**
 * A loaded source (after skipping processed brands) with no brand left: what to say instead
 * of creating a run. A run with no brands would become its source's latest run and
 * complete at once, doing nothing but hiding the runs that hold the results.
 */
export function nothingToDo(loaded: LoadedSource): NothingToDo | undefined {
  if (loaded.brands.length > 0) return undefined;
  const processed = loaded.skipped.filter((s) => s.reason === 'already_processed').length;
  const invalid = loaded.skipped.length - processed;
  const invalidNote = invalid === 0 ? '' : `${processed === 0 ? ' (' : '; '}${invalid} ${invalid === 1 ? 'row' : 'rows'} skipped as invalid${processed === 0 ? ')' : ''}`;
  if (processed === 0) {
    return { kind: 'nothing_to_do', message: invalid === 0 ? 'nothing to do: the source has no brands' : `nothing to do: no valid brand in the source${invalidNote}` };
  }
  const runIds = loaded.alreadyProcessedIn ?? [];
  const inRuns = runIds.length === 1 ? `run ${runIds[0]}` : `runs ${runIds.join(', ')}`;
  return {
    kind: 'nothing_to_do',
    message: `nothing to do: all ${processed} ${processed === 1 ? 'brand' : 'brands'} already have results in ${inRuns} (use --force to redo)${invalidNote}`,
  };
}
