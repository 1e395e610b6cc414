import { describe, expect, it } from 'vitest';
import { parseDuration, parseRetryAfter } from './retry-after.js';

const NOW = Date.parse('2026-11-22T10:00:00Z');

describe('parseRetryAfter', () => {
  it('prefers retry-after-ms, then retry-after seconds', () => {
    expect(parseRetryAfter({ 'retry-after-ms': '1500', 'retry-after': '9' }, undefined, NOW)).toBe(1500);
    expect(parseRetryAfter({ 'retry-after': '2' }, undefined, NOW)).toBe(2000);
    expect(parseRetryAfter({ 'retry-after': '0.5' }, undefined, NOW)).toBe(500);
  });

  it('reads retry-after as an HTTP date', () => {
    expect(parseRetryAfter({ 'retry-after': 'Sun, 22 Nov 2026 10:00:07 GMT' }, undefined, NOW)).toBe(7000);
  });

  it('falls back to the reset header of the exhausted window', () => {
    expect(parseRetryAfter({ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s', 'x-ratelimit-remaining-tokens': '0' }, undefined, NOW)).toBe(360_000);
    expect(parseRetryAfter({ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s', 'x-ratelimit-remaining-requests': '0' }, undefined, NOW)).toBe(1000);
    expect(parseRetryAfter({ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s' }, undefined, NOW)).toBe(1000);
    expect(parseRetryAfter({ 'x-ratelimit-reset': String(NOW + 3000) }, undefined, NOW)).toBe(3000);
  });

  it("reads OpenAI's 'Please try again in 26.604s' message before the reset headers", () => {
    expect(parseRetryAfter({ 'x-ratelimit-reset-tokens': '59.999s' }, 'Please try again in 2.5s.', NOW)).toBe(2500);
    const message = 'Rate limit reached for gpt-4 in organization org-x on tokens per min (TPM): Limit 10000, Used 9348, Requested 5086. Please try again in 26.604s.';
    expect(parseRetryAfter(undefined, message, NOW)).toBe(26_604);
    expect(parseRetryAfter(new Headers(), 'Please try again in 120ms.', NOW)).toBe(120);
  });

  it('works with fetch Headers and says nothing when there is no signal', () => {
    expect(parseRetryAfter(new Headers({ 'Retry-After': '3' }), undefined, NOW)).toBe(3000);
    expect(parseRetryAfter(new Headers(), 'Too many requests', NOW)).toBeUndefined();
  });
});

describe('parseDuration', () => {
  it('parses OpenAI durations', () => {
    expect(parseDuration('12ms')).toBe(12);
    expect(parseDuration('1m30.5s')).toBe(90_500);
    expect(parseDuration('soon')).toBeUndefined();
  });
});
