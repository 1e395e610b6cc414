export { RunStore } from './run-store.js';
export type { NewRun, OutcomeRecorded, RunWritten, RunOfOtherSource } from './run-store.js';
export type { RunMeta, RunStatus, BrandFacts, BrandResult, BrandFailure, SkippedBrand } from './run-types.js';
export { newRunId } from './run-id.js';
