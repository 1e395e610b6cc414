export { DEFAULT_WEIGHT, MAX_WEIGHT, parseWeight, parseMaxRpm, weightSchema, maxRpmSchema } from './run-share.js';
export type { RunShare } from './run-share.js';
export { PRIORITY_LIMIT, prioritiesFrom, priorityOfTag, tagOfPriority } from './fair-tags.js';
export { FairScheduler, moveJob } from './fair-scheduler.js';
export { RunCeiling } from './run-ceiling.js';
export { RunShares, etaSeconds, SHARE_BUCKET_MS, SHARE_WINDOW_MS } from './run-shares.js';
export type { MeasuredShare, FleetShares } from './run-shares.js';
