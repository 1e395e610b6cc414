export { RunStore, LATEST_RESULTS_KEPT } from './run-store.js';
export type { NewRun, OutcomeRecorded, RunWritten, RunOfOtherSource, RunOfOtherRecipe, RunStoreOptions } from './run-store.js';
export type { RunMeta, RunStatus, BrandResult, BrandFailure, SkippedBrand } from './run-types.js';
export type { RunAction, RunHistoryEntry } from './run-types.js';
export { newRunId } from './run-id.js';
export { listRunsForRetention, pruneRuns } from './run-retention.js';
export type { RetentionDeps, RunRetentionListing, PruneOptions, PruneReport, PrunableRun, KeptRun } from './run-retention.js';
export { RunTimeline, projectSpendMicros } from './run-timeline.js';
export type { RunTimelineData, TimelineCounts, TimelineIncrement, TimelinePoint, TimelineWaits } from './run-timeline.js';
