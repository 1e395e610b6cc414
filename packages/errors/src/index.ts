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
  LimiterUnavailableError,
  ConfigError,
  isBrandqError,
} from './provider-error.js';
export type { Provider, FailureKind, BrandqErrorOptions } from './provider-error.js';
export { parseRetryAfter, explicitRetryAfter, parseDuration } from './retry-after.js';
