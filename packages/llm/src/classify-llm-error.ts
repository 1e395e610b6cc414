import OpenAI from 'openai';
import {
  BadRequestError,
  BrandqError,
  CapacityUnavailableError,
  QuotaExhaustedError,
  RateLimitedError,
  TransientError,
  UnauthorizedError,
  explicitRetryAfter,
  parseRetryAfter,
  wasNeverSent,
} from '@brandq/errors';

interface OpenRouterErrorBody {
  metadata?: { reason?: string; limit_source?: string };
}

/** Maps a failed chat completion (OpenAI or OpenRouter through the `openai` SDK) to the error model. */
export function classifyLlmError(error: unknown): BrandqError {
  if (error instanceof BrandqError) return error;
  const base = { provider: 'llm' as const, cause: error };
  if (error instanceof OpenAI.APIConnectionError) {
    // Includes APIConnectionTimeoutError: no answer, so a retry can succeed; but unless the
    // connection was never made, the provider may have received (and billed) the request.
    return new TransientError(`LLM endpoint unreachable: ${error.message}`, { ...base, outcomeUnknown: !wasNeverSent(error) });
  }
  if (!(error instanceof OpenAI.APIError) || error.status === undefined) {
    // An answer we could not read, or an abort mid-call: possibly billed.
    return new TransientError(`LLM call failed: ${error instanceof Error ? error.message : String(error)}`, { ...base, outcomeUnknown: true });
  }
  const status = error.status;
  const opts = { ...base, status };
  const body = (error.error ?? {}) as OpenRouterErrorBody;
  const retryAfterMs = parseRetryAfter(error.headers, error.message);
  const withWait = retryAfterMs === undefined ? opts : { ...opts, retryAfterMs };

  if (status === 429) {
    // Flex capacity is short: the request was refused before any work, so it is neither
    // billed nor a sign the fleet goes too fast.
    if (error.code === 'resource_unavailable' || /resource unavailable/i.test(error.message)) {
      // Only an explicit Retry-After: the rate window's reset headers say nothing of Flex capacity.
      const asked = explicitRetryAfter(error.headers);
      return new CapacityUnavailableError(`LLM flex capacity unavailable (HTTP 429): ${error.message}`, asked === undefined ? opts : { ...opts, retryAfterMs: asked });
    }
    if (error.code === 'insufficient_quota') {
      return new QuotaExhaustedError('LLM quota exhausted (insufficient_quota): add credits or raise the limit with the provider, then resume the run', opts);
    }
    return new RateLimitedError(`LLM rate limit (HTTP 429): ${error.message}`, { ...withWait, headers: error.headers });
  }
  if (status === 402) {
    if (body.metadata?.reason === 'in_flight_budget_exhausted') {
      return new RateLimitedError(`LLM in-flight budget exhausted (HTTP 402): ${error.message}`, withWait);
    }
    return new QuotaExhaustedError(
      `LLM credits exhausted (HTTP 402${body.metadata?.limit_source ? `, ${body.metadata.limit_source}` : ''}): top up or raise the key limit, then resume the run`,
      opts,
    );
  }
  if (status === 401 || status === 403) return new UnauthorizedError(`LLM refused the API key (HTTP ${status}): ${error.message}`, opts);
  if (status === 408 || status === 409 || status >= 500) {
    // Only an explicit Retry-After: the rate-limit reset headers on a 5xx describe the window.
    const asked = explicitRetryAfter(error.headers);
    return new TransientError(`LLM server error (HTTP ${status}): ${error.message}`, asked === undefined ? opts : { ...opts, retryAfterMs: asked });
  }
  return new BadRequestError(`LLM rejected the request (HTTP ${status}): ${error.message}`, opts);
}
