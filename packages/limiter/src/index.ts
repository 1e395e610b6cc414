export { createLimiter, Limiter } from './limiter.js';
export type { LimiterOptions, LimiterLogger } from './limiter.js';
export { MemoryLimiterStore } from './memory-store.js';
export type { MemoryLimiterStoreOptions } from './memory-store.js';
export { RedisLimiterStore } from './redis-store.js';
export type { RedisLimiterStoreOptions } from './redis-store.js';
export type { LimiterStore, AdmissionRequest, AdmissionDecision, SettleRequest } from './limiter-store.js';
export { resolveLimits } from './limits.js';
export { limitsFromConfig } from './limits-from-config.js';
export { LimiterWaitTimeoutError, LimiterRequestTooLargeError } from './errors.js';
export { parseRateLimitHeaders, parseResetDuration } from './rate-limit-headers.js';
export type { HeaderSource } from './rate-limit-headers.js';
export type {
  ProviderLimits,
  ResolvedLimits,
  Priority,
  TokenCounting,
  DeferralReason,
  AcquireOptions,
  SettleOptions,
  SettleOutcome,
  Permit,
  CooldownRequest,
  RateLimitSnapshot,
  LimiterStats,
} from './types.js';
