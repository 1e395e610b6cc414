import { describe, expect, it } from 'vitest';
import { parseRateLimitHeaders, parseResetDuration } from './rate-limit-headers.js';

describe('rate-limit headers', () => {
  it('parses OpenAI reset durations and plain seconds', () => {
    expect(parseResetDuration('1s')).toBe(1000);
    expect(parseResetDuration('6m0s')).toBe(360_000);
    expect(parseResetDuration('12ms')).toBe(12);
    expect(parseResetDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseResetDuration('0.5')).toBe(500);
    expect(parseResetDuration('soon')).toBeUndefined();
    expect(parseResetDuration('')).toBeUndefined();
  });

  it('reads remaining and reset from Headers or a plain record, ignoring junk', () => {
    expect(
      parseRateLimitHeaders(new Headers({ 'x-ratelimit-remaining-requests': '59', 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-remaining-tokens': '29000' })),
    ).toEqual({ remainingRequests: 59, resetRequestsMs: 1000, remainingTokens: 29000 });
    expect(parseRateLimitHeaders({ 'X-RateLimit-Remaining-Tokens': '10', 'x-ratelimit-reset-tokens': ['6m0s'] })).toEqual({
      remainingTokens: 10,
      resetTokensMs: 360_000,
    });
    expect(parseRateLimitHeaders({ 'x-ratelimit-remaining-requests': 'lots' })).toEqual({});
  });
});
