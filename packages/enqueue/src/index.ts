export { enqueueRun, jobDataFor } from './enqueue-run.js';
export type { EnqueueRunInput, EnqueueRunDeps } from './enqueue-run.js';
export { loadSource, sourceKeyFor, sheetsClientFor } from './load-source.js';
export type { SourceSpec, LoadedSource } from './load-source.js';
export { requeueRun } from './resume-run.js';
export { skipAlreadyProcessed } from './skip-processed.js';
export { preflightRun } from './preflight-run.js';
export type { PreflightRequest } from './preflight-run.js';
