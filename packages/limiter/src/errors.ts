import { BadRequestError, RateLimitedError, type Provider } from '@brandq/errors';

const KNOWN: readonly string[] = ['llm', 'tavily', 'sheets'];

/** The provider field of brandq errors only takes the known providers. */
export function errorProvider(provider: string): Provider | undefined {
  return KNOWN.includes(provider) ? (provider as Provider) : undefined;
}

/** Admission would take longer than the caller's `maxWaitMs`: retry the job later. */
export class LimiterWaitTimeoutError extends RateLimitedError {
  constructor(provider: string, waitedMs: number, nextWaitMs: number, reason: string, maxWaitMs: number) {
    super(
      `limiter: no ${provider} slot within ${maxWaitMs} ms (waited ${Math.round(waitedMs)} ms, next wait ${nextWaitMs} ms for ${reason})`,
      { provider: errorProvider(provider), retryAfterMs: nextWaitMs, details: { limiterProvider: provider, reason, waitedMs: Math.round(waitedMs), maxWaitMs } },
    );
  }
}

/** The reservation exceeds what a whole window allows: it could never be admitted. */
export class LimiterRequestTooLargeError extends BadRequestError {
  constructor(provider: string, tokens: number, effectiveTpm: number) {
    super(
      `limiter: a ${provider} call reserving ${tokens} tokens can never fit the effective limit of ${effectiveTpm} tokens per window ` +
        '(tpm x (1 - headroom)); shorten the prompt or lower max output tokens',
      { provider: errorProvider(provider), details: { limiterProvider: provider, tokens, effectiveTpm } },
    );
  }
}
