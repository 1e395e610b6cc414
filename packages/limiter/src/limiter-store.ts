import type { CooldownRequest, DeferralReason, LimiterStats, Priority, RateLimitSnapshot, ResolvedLimits, SettleOutcome } from './types.js';

export interface AdmissionRequest {
  id: string;
  tokens: number;
  priority: Priority;
  /** Time the caller already waited, recorded in the stats on admission. */
  waitedMs: number;
  /** The wake-up slot its last wait handed it (store clock ms), 0 = none. */
  slotMs: number;
  /** Uniform in [-1, 1]: spreads the gap to the previous waiter's slot by +/- the jitter ratio. */
  jitter: number;
}

export type AdmissionDecision =
  | { kind: 'admitted'; nowMs: number; leaseUntilMs: number; tokens: number }
  /**
   * `slotMs` > 0: a wake-up slot of this caller's own (store clock ms), a launch spacing
   * (+/- jitter) from the previous waiter's; sleep until it exactly. 0: a concurrency wait with no
   * known end, to be polled with jitter.
   */
  | { kind: 'wait'; waitMs: number; reason: DeferralReason; slotMs: number }
  /** The reservation exceeds the effective token limit of a whole window. */
  | { kind: 'too-large'; effectiveTpm: number };

export interface SettleRequest {
  id: string;
  /** Undefined keeps the reservation (usage unknown). */
  usedTokens: number | undefined;
  /** How long the permit was held, or undefined. */
  holdMs: number | undefined;
}

/**
 * Where the shared limiter state lives. Both stores implement the same rules with the
 * same answers, so the logic is specified once (the behaviour specs run on both) and the
 * Redis store is only the atomic, cross-process version of the memory one.
 */
export interface LimiterStore {
  acquire(provider: string, limits: ResolvedLimits, request: AdmissionRequest): Promise<AdmissionDecision>;
  settle(provider: string, limits: ResolvedLimits, request: SettleRequest): Promise<SettleOutcome>;
  release(provider: string, limits: ResolvedLimits, id: string): Promise<SettleOutcome>;
  /** Returns the new lease expiry, or 0 when the lease is gone. */
  renew(provider: string, limits: ResolvedLimits, id: string): Promise<number>;
  /** Returns the cooldown end now in force (0 = none). */
  cooldown(provider: string, request: CooldownRequest): Promise<number>;
  syncHeaders(provider: string, limits: ResolvedLimits, snapshot: RateLimitSnapshot): Promise<void>;
  stats(provider: string): Promise<LimiterStats>;
}

export function priorityCap(limits: ResolvedLimits, priority: Priority): number {
  return priority === 'finalize' ? limits.finalizeConcurrency : limits.maxConcurrency;
}
