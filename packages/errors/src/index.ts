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
  ConfigError,
  isBrandqError,
} from './provider-error.js';
export type { Provider, FailureKind, BrandqErrorOptions } from './provider-error.js';
export { wasNeverSent } from './delivery.js';
export { parseRetryAfter, explicitRetryAfter, parseDuration } from './retry-after.js';
