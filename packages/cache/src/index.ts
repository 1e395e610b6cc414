export { ResultCache, cacheKeyOf } from './result-cache.js';
export type { CacheOutcome, ResultCacheOptions, ResultCacheStats } from './result-cache.js';
export type { ResultCacheObserver, CacheLogger } from './cache-observer.js';
export type { FillLockLoss } from './fill-lock.js';
