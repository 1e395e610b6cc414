import { describe, expect, it } from 'vitest';
import { loadConfig } from '@brandq/config';
import { jitteredDelay } from './jitter.js';
import { limitsFromConfig } from './limits-from-config.js';
import { resolveLimits } from './limits.js';

describe('limits', () => {
  it('fills in defaults and the effective token limit', () => {
    expect(resolveLimits('llm', { rpm: 60, burst: 10, tpm: 30_000, tpmHeadroom: 0.15, maxConcurrency: 3, finalizeConcurrency: 2 })).toMatchObject({
      effectiveTpm: 25_500,
      maxConcurrency: 3,
      finalizeConcurrency: 2,
      staggerMs: 0,
      jitterRatio: 0.2,
      jitterCapMs: 3000,
      leaseMs: 30_000,
      windowMs: 60_000,
    });
    expect(resolveLimits('x', { rpm: 1, burst: 1, maxConcurrency: 2, finalizeConcurrency: 5 }).finalizeConcurrency).toBe(2);
    expect(() => resolveLimits('x', { rpm: 1, burst: 1, paceMs: -1 })).toThrow(/invalid paceMs/);
    expect(() => resolveLimits('a:b', { rpm: 1, burst: 1 })).toThrow(/invalid provider/);
  });

  it('counts tokens at admission and paces over 1 s slices by default: the shipped burst of 10 at 60 rpm paces at 1 per second', () => {
    expect(resolveLimits('llm', { rpm: 60, burst: 10, tpm: 30_000 })).toMatchObject({ tokenCounting: 'admission', paceMs: 1000, burst: 1 });
    expect(resolveLimits('tavily', { rpm: 600, burst: 20 }).burst).toBe(10);
    expect(resolveLimits('fast', { rpm: 6000, burst: 20 }).burst).toBe(20);
    expect(resolveLimits('off', { rpm: 60, burst: 10, paceMs: 0 }).burst).toBe(10);
  });

  it('from the environment: OpenAI counted at admission and every provider paced over 0.5 s slices unless configured otherwise', () => {
    const shipped = limitsFromConfig(loadConfig({}));
    expect(shipped.llm).toMatchObject({ tokenCounting: 'admission', paceMs: 500 });
    expect(shipped.tavily.paceMs).toBe(500);
    expect(shipped.sheets.paceMs).toBe(500);
    expect(resolveLimits('llm', shipped.llm).burst).toBe(1);
    const configured = limitsFromConfig(loadConfig({ OPENAI_TOKEN_COUNTING: 'usage', LIMITER_PACE_SLICE_SECONDS: '0' }));
    expect(configured.llm).toMatchObject({ tokenCounting: 'usage', paceMs: 0 });
    expect(() => loadConfig({ OPENAI_TOKEN_COUNTING: 'estimate' })).toThrow(/OPENAI_TOKEN_COUNTING/);
  });
});

describe('jitteredDelay', () => {
  it('spreads by +/- ratio, capped, never below 1 ms', () => {
    expect(jitteredDelay(1000, 0.2, 3000, () => 0)).toBe(800);
    expect(jitteredDelay(1000, 0.2, 3000, () => 1)).toBe(1200);
    expect(jitteredDelay(60_000, 0.2, 3000, () => 1)).toBe(63_000);
    expect(jitteredDelay(1, 0.9, 3000, () => 0)).toBe(1);
    for (let i = 0; i < 100; i++) {
      const d = jitteredDelay(500, 0.2, 3000);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(600);
    }
  });
});
