import type {
  BrandqError} from '@brandq/errors';
import {
  BadRequestError,
  QuotaExhaustedError,
  RateLimitedError,
  TransientError,
  UnauthorizedError,
  parseRetryAfter,
  wasNeverSent,
} from '@brandq/errors';
import type { CapturedHttp } from './http-status-capture.js';

/** Maps a failed Tavily call to the error model, from the HTTP status the call received. */
export function classifyTavilyError(error: unknown, http: CapturedHttp): BrandqError {
  const message = error instanceof Error ? error.message : String(error);
  const opts = { provider: 'tavily' as const, status: http.status, cause: error };
  const status = http.status;
  if (status === undefined) {
    // No HTTP answer at all: timeout, connection refused or reset, or a body the SDK could not read.
    const neverSent = (http.code !== undefined && wasNeverSent({ code: http.code })) || wasNeverSent(error);
    return new TransientError(`Tavily request failed without a response (${http.code ?? 'no status'}): ${message}`, { ...opts, outcomeUnknown: !neverSent });
  }
  if (status === 401 || status === 403) return new UnauthorizedError(`Tavily refused the API key (HTTP ${status}): ${message}`, opts);
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(http.headers, message);
    return new RateLimitedError(`Tavily rate limit (HTTP 429): ${message}`, { ...opts, headers: http.headers ?? {}, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
  }
  if (status === 432 || status === 433) {
    const which = status === 432 ? 'plan usage limit' : 'pay-as-you-go limit';
    return new QuotaExhaustedError(`Tavily ${which} exceeded (HTTP ${status}): raise the limit in the Tavily dashboard, then resume the run`, opts);
  }
  if (status === 408 || status >= 500) return new TransientError(`Tavily server error (HTTP ${status}): ${message}`, opts);
  if (status >= 400) return new BadRequestError(`Tavily rejected the request (HTTP ${status}): ${message}`, opts);
  // A 2xx whose body the SDK could not use: answered, so possibly billed.
  return new TransientError(`Tavily answered HTTP ${status} with an unusable body: ${message}`, { ...opts, outcomeUnknown: true });
}
