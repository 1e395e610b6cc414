export { createLimiter, Limiter } from './limiter.js';
export type { LimiterOptions, LimiterLogger, RedisDownPolicy } from './limiter.js';
export { MemoryLimiterStore } from './memory-store.js';
export type { MemoryLimiterStoreOptions } from './memory-store.js';
export { RedisLimiterStore } from './redis-store.js';
export type { RedisLimiterStoreOptions } from './redis-store.js';
export type { LimiterStore, AdmissionRequest, AdmissionDecision, SettleRequest } from './limiter-store.js';
export { resolveLimits } from './limits.js';
export { LimiterWaitTimeoutError, LimiterRequestTooLargeError } from './errors.js';
export { estimateChatTokens, FALLBACK_TOKENS_PER_CALL } from './token-estimate.js';
export type { ChatMessageLike } from './token-estimate.js';
export { parseRateLimitHeaders, parseResetDuration } from './rate-limit-headers.js';
export type { HeaderSource } from './rate-limit-headers.js';
export type {
  ProviderLimits,
  ResolvedLimits,
  Priority,
  DeferralReason,
  AcquireOptions,
  SettleOptions,
  SettleOutcome,
  Permit,
  CooldownRequest,
  RateLimitSnapshot,
  LimiterStats,
} from './types.js';
