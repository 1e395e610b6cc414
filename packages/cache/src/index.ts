export { ResultCache, cacheKeyOf } from './result-cache.js';
export type { CacheOutcome, ResultCacheOptions } from './result-cache.js';
