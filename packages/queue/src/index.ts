export { BRAND_QUEUE, brandJobId } from './job-data.js';
export type { BrandJobData, BrandSource } from './job-data.js';
export { createBrandQueue, brandJobOptions, BACKOFF_TYPE } from './brand-queue.js';
export type { BrandQueue, RetentionOptions } from './brand-queue.js';
