export { BatchDesk } from './batch-desk.js';
export { batchRequestId } from './batch-request.js';
export type { ParkedRequest, BatchOutcome } from './batch-request.js';
export { BatchApi } from './batch-api.js';
export type { BatchApiOptions } from './batch-api.js';
export { BatchCoordinator } from './batch-coordinator.js';
export type { BatchCoordinatorOptions, BatchIntent } from './batch-coordinator.js';
