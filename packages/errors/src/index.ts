export {
  BrandqError,
  RateLimitedError,
  TransientError,
  QuotaExhaustedError,
  UnauthorizedError,
  BadRequestError,
  BadOutputError,
  BadInputError,
  BudgetExhaustedError,
  BudgetInFlightError,
  LimiterUnavailableError,
  RunThrottledError,
  CapacityUnavailableError,
  BatchParkedError,
  ConfigError,
  isBrandqError,
} from './provider-error.js';
export type { Provider, FailureKind, BrandqErrorOptions } from './provider-error.js';
export { wasNeverSent } from './delivery.js';
export { parseRetryAfter, explicitRetryAfter, parseDuration } from './retry-after.js';
