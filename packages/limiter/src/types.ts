/** Limits of one provider, shared by every worker process that uses the same Redis. */
export interface ProviderLimits {
  /** Requests per window (per minute unless `windowMs` is shortened). */
  rpm: number;
  /**
   * Bucket capacity: how many requests may start back to back. Buckets start at `burst`.
   * With pacing on, capped at one slice's share of rpm (see `paceMs`).
   */
  burst: number;
  /** Tokens per window; no token rule when absent. */
  tpm?: number;
  /**
   * How the provider counts a call against tpm (default 'admission'). 'admission' (OpenAI):
   * the reservation (prompt estimate + output cap) counts whatever the call used, failed calls
   * included; a settle may only raise it. 'usage': settle corrects the window to the usage.
   * `release()` (the call was never sent) refunds in both modes.
   */
  tokenCounting?: TokenCounting;
  /**
   * Length of the slice over which the provider also enforces its per-window limits (default
   * 1000; 0 = no pacing). Providers quantize "60,000 per minute" as "1,000 per second", so
   * admissions conform to a provider bucket holding one slice's share of rpm and tpm, refilled
   * at the per-window rate (the last call may overshoot it): the request bucket holds at most
   * max(1, floor(rpm x paceMs / windowMs)), and tokens follow a GCRA schedule whose tolerance
   * is one slice.
   */
  paceMs?: number;
  /** Share of `tpm` kept free (0..1): the effective limit is tpm x (1 - headroom). */
  tpmHeadroom?: number;
  /** Reservation used when a caller gives no estimate (only for providers with `tpm`). */
  fallbackTokens?: number;
  /** Calls in flight across the fleet; no lease is taken when absent. */
  maxConcurrency?: number;
  /** Lower cap for the 'finalize' class: such a call starts only while fewer than this many are in flight. */
  finalizeConcurrency?: number;
  /** Minimum spacing between launches across the fleet (0 = off). */
  staggerMs?: number;
  /** Wake-up jitter as a share of each wait, +/- (default 0.2). */
  jitterRatio?: number;
  /** Largest jitter in ms (default 3000). */
  jitterCapMs?: number;
  /** Concurrency lease length; a live holder renews it every leaseMs/3 (default 30000). */
  leaseMs?: number;
  /** Length of the "minute" of rpm and tpm (default 60000; tests shorten it). */
  windowMs?: number;
  /**
   * Extra time each request and token entry stays counted (default 200 ms): the provider
   * stamps a request when it arrives, a little after we admitted it, so its window ends
   * a little later than ours would.
   */
  safetyMarginMs?: number;
}

/** Limits with every default filled in and checked. */
export interface ResolvedLimits {
  rpm: number;
  /** The effective bucket capacity: the configured burst, capped by pacing. */
  burst: number;
  /** Raw provider token limit per window, 0 = no token rule. */
  tpm: number;
  /** tpm x (1 - headroom), floored; 0 = no token rule. */
  effectiveTpm: number;
  tokenCounting: TokenCounting;
  /** 0 = no pacing. */
  paceMs: number;
  fallbackTokens: number;
  /** 0 = no concurrency rule. */
  maxConcurrency: number;
  finalizeConcurrency: number;
  staggerMs: number;
  jitterRatio: number;
  jitterCapMs: number;
  leaseMs: number;
  windowMs: number;
  safetyMarginMs: number;
}

export type Priority = 'default' | 'finalize';

export type TokenCounting = 'admission' | 'usage';

export type DeferralReason = 'cooldown' | 'concurrency' | 'requests' | 'tokens' | 'stagger';

export const DEFERRAL_REASONS: readonly DeferralReason[] = ['cooldown', 'concurrency', 'requests', 'tokens', 'stagger'];

export interface AcquireOptions {
  /** Tokens to reserve (the prompt as the provider counts it plus the output cap); defaults to the provider's `fallbackTokens`. */
  tokens?: number;
  priority?: Priority;
  signal?: AbortSignal;
  /** Give up with `LimiterWaitTimeoutError` rather than wait longer than this in total. */
  maxWaitMs?: number;
}

export interface SettleOptions {
  /** Tokens the provider reported (`usage.total_tokens`); when absent the reservation stands. */
  usedTokens?: number;
}

export interface SettleOutcome {
  /** False when the lease had already expired: the holder outlived it without renewing. */
  leaseHeld: boolean;
  /** Tokens charged (> 0) or refunded (< 0) against the window (never < 0 on settle in 'admission' counting). */
  tokenDelta: number;
}

export interface Permit {
  readonly id: string;
  readonly provider: string;
  /** Tokens reserved in the window. */
  readonly tokens: number;
  /** Time spent waiting for admission. */
  readonly waitedMs: number;
  /** Redis server time of admission. */
  readonly admittedAtMs: number;
  /**
   * The call was sent (answered or failed): reconciles the reservation with the usage as the
   * provider counts it (see `tokenCounting`) and frees the lease. Idempotent.
   */
  settle(options?: SettleOptions): Promise<SettleOutcome>;
  /** The call was never made: refunds everything and frees the lease. Idempotent. */
  release(): Promise<SettleOutcome>;
  /** Extends the lease now; false if it was already reclaimed. Also done automatically. */
  renew(): Promise<boolean>;
}

export interface CooldownRequest {
  /** Wait measured from now on the Redis clock (Retry-After). */
  retryAfterMs?: number;
  /** Absolute end in epoch ms (an HTTP date), compared on the Redis clock. */
  untilMs?: number;
}

/** What a provider said about its own limits, in ms from now. */
export interface RateLimitSnapshot {
  remainingRequests?: number;
  resetRequestsMs?: number;
  remainingTokens?: number;
  resetTokensMs?: number;
}

export interface LimiterStats {
  /** Admissions. */
  calls: number;
  /** Time callers spent waiting for admission, summed. */
  totalWaitMs: number;
  avgWaitMs: number;
  /** Wait answers by reason (a caller that waits twice counts twice). */
  deferrals: Record<DeferralReason, number>;
  activeLeases: number;
  tokensInWindow: number;
  requestsInWindow: number;
  /** Next launch slot of the stagger rule (server ms, 0 = none). */
  nextSlotAtMs: number;
  cooldownUntilMs: number;
  /** Requests held until this server time by a provider that reported none remaining. */
  holdUntilMs: number;
  settled: number;
  released: number;
  cooldowns: number;
  leasesReclaimed: number;
  headerCorrections: number;
  /** Estimate vs actual: tokens reserved at admission and tokens reported at settle. */
  tokensReserved: number;
  tokensUsed: number;
  /** Moving average of how long a permit is held, i.e. the provider's latency (0 = unknown). */
  avgHoldMs: number;
  /** Server time of this snapshot. */
  nowMs: number;
}
