export { BrandPipeline, searchCacheKey, llmCacheKey } from './brand-pipeline.js';
export type { PipelineDeps, BrandCheckpoint, ProcessContext, ProcessOutcome, SheetWriteSink } from './brand-pipeline.js';
export type { ProviderGate, GatePermit } from './provider-gate.js';
export { RESULT_COLUMNS, resultCells, resultRange } from './result-row.js';
export { createBrandJobProcessor, brandBackoffStrategy, FinalFailure } from './brand-job-processor.js';
export type { ProcessorOptions, StoredJobData, BrandJobState, AttemptRecord } from './brand-job-processor.js';
export { exponentialBackoffMs } from './backoff.js';
export { silentObserver } from './pipeline-observer.js';
export type { PipelineObserver } from './pipeline-observer.js';
