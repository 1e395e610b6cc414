import { ConfigError } from '@brandq/errors';
import { assertSafeId } from '@brandq/redis';
import type { ProviderLimits, ResolvedLimits } from './types.js';

function check(provider: string, name: string, value: number, ok: boolean): number {
  if (!Number.isFinite(value) || !ok) {
    throw new ConfigError(`limiter: invalid ${name} ${value} for provider "${provider}"`, { details: { provider, [name]: value } });
  }
  return value;
}

/** Fills in the defaults and rejects limits that would make the rules meaningless. */
export function resolveLimits(provider: string, limits: ProviderLimits): ResolvedLimits {
  assertSafeId(provider, 'provider');
  const rpm = check(provider, 'rpm', limits.rpm, limits.rpm > 0);
  const burst = check(provider, 'burst', limits.burst, limits.burst >= 1);
  const tpm = limits.tpm === undefined ? 0 : check(provider, 'tpm', limits.tpm, limits.tpm > 0);
  const headroom = limits.tpmHeadroom ?? 0;
  check(provider, 'tpmHeadroom', headroom, headroom >= 0 && headroom < 1);
  const maxConcurrency =
    limits.maxConcurrency === undefined ? 0 : check(provider, 'maxConcurrency', limits.maxConcurrency, Number.isInteger(limits.maxConcurrency) && limits.maxConcurrency >= 1);
  const finalize = limits.finalizeConcurrency ?? maxConcurrency;
  check(provider, 'finalizeConcurrency', finalize, Number.isInteger(finalize) && finalize >= (maxConcurrency > 0 ? 1 : 0));
  const windowMs = limits.windowMs ?? 60_000;
  check(provider, 'windowMs', windowMs, windowMs >= 10);
  const leaseMs = limits.leaseMs ?? 30_000;
  check(provider, 'leaseMs', leaseMs, leaseMs >= 30);
  const staggerMs = limits.staggerMs ?? 0;
  check(provider, 'staggerMs', staggerMs, staggerMs >= 0);
  const jitterRatio = limits.jitterRatio ?? 0.2;
  check(provider, 'jitterRatio', jitterRatio, jitterRatio >= 0 && jitterRatio <= 1);
  const jitterCapMs = limits.jitterCapMs ?? 3000;
  check(provider, 'jitterCapMs', jitterCapMs, jitterCapMs >= 0);
  const safetyMarginMs = limits.safetyMarginMs ?? 200;
  check(provider, 'safetyMarginMs', safetyMarginMs, safetyMarginMs >= 0);
  const fallbackTokens = limits.fallbackTokens ?? 0;
  check(provider, 'fallbackTokens', fallbackTokens, fallbackTokens >= 0);
  const paceMs = limits.paceMs ?? 1000;
  check(provider, 'paceMs', paceMs, paceMs >= 0);
  const tokenCounting = limits.tokenCounting ?? 'admission';
  if (tokenCounting !== 'admission' && tokenCounting !== 'usage') {
    throw new ConfigError(`limiter: invalid tokenCounting "${String(tokenCounting)}" for provider "${provider}"`, { details: { provider, tokenCounting } });
  }
  return {
    rpm,
    // A full burst in one instant is what a provider enforcing per slice answers with 429s:
    // the bucket holds at most one slice's share of rpm (and never less than one request).
    burst: paceMs > 0 ? Math.min(burst, Math.max(1, Math.floor((rpm * paceMs) / windowMs))) : burst,
    tpm,
    effectiveTpm: tpm > 0 ? Math.max(1, Math.floor(tpm * (1 - headroom))) : 0,
    tokenCounting,
    paceMs,
    fallbackTokens: Math.ceil(fallbackTokens),
    maxConcurrency,
    // A finalize cap above the default cap would be no cap at all.
    finalizeConcurrency: maxConcurrency > 0 ? Math.min(finalize, maxConcurrency) : 0,
    staggerMs,
    jitterRatio,
    jitterCapMs,
    leaseMs,
    windowMs,
    safetyMarginMs,
  };
}
