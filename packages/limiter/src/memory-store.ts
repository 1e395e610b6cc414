import type { AdmissionDecision, AdmissionRequest, LimiterStore, SettleRequest } from './limiter-store.js';
import { priorityCap } from './limiter-store.js';
import type { CooldownRequest, DeferralReason, LimiterStats, RateLimitSnapshot, ResolvedLimits, SettleOutcome } from './types.js';
import { DEFERRAL_REASONS } from './types.js';

interface ProviderState {
  level: number | undefined;
  ts: number;
  holdUntil: number;
  /** The latest admission, whose bucket token a release may give back (see release.lua). */
  lastAdmitted: string | undefined;
  /** Request log: id -> expiry. */
  requests: Map<string, number>;
  /** Token window: id -> expiry and tokens. */
  window: Map<string, { expiry: number; tokens: number }>;
  windowSum: number;
  /** Token pacing schedule (theoretical arrival time), as in acquire.lua; undefined = caught up. */
  tat: number | undefined;
  /** The latest paced admission, whose share a release may take back (see release.lua). */
  lastPaced: string | undefined;
  /** Leases: id -> expiry. */
  leases: Map<string, number>;
  nextSlot: number;
  /** The latest wake-up slot handed to a waiting caller. */
  lastWaitSlot: number;
  cooldownUntil: number;
  holdMsEwma: number | undefined;
  counters: Record<string, number>;
}

export interface MemoryLimiterStoreOptions {
  /** Clock in ms; monotonic wall time by default. Tests may pass a fake clock. */
  now?: () => number;
}

let syncSeq = 0;

/**
 * The limiter rules for one process, in memory: the same algorithm as the Lua scripts
 * (see lua/acquire.lua), used for tests and single-process runs; one behaviour spec runs
 * on both stores. Keep the two in step.
 */
export class MemoryLimiterStore implements LimiterStore {
  private readonly states = new Map<string, ProviderState>();
  private readonly now: () => number;

  constructor(options: MemoryLimiterStoreOptions = {}) {
    this.now = options.now ?? (() => Math.floor(performance.timeOrigin + performance.now()));
  }

  private state(provider: string): ProviderState {
    let s = this.states.get(provider);
    if (!s) {
      s = {
        level: undefined,
        ts: 0,
        holdUntil: 0,
        lastAdmitted: undefined,
        requests: new Map(),
        window: new Map(),
        windowSum: 0,
        tat: undefined,
        lastPaced: undefined,
        leases: new Map(),
        nextSlot: 0,
        lastWaitSlot: 0,
        cooldownUntil: 0,
        holdMsEwma: undefined,
        counters: {},
      };
      this.states.set(provider, s);
    }
    return s;
  }

  private count(s: ProviderState, name: string, by = 1): void {
    s.counters[name] = (s.counters[name] ?? 0) + by;
  }

  private level(s: ProviderState, limits: ResolvedLimits, now: number): number {
    let level = s.level ?? limits.burst;
    if (s.level !== undefined && now > s.ts) level += (now - s.ts) * (limits.rpm / limits.windowMs);
    return Math.min(level, limits.burst);
  }

  private trim(s: ProviderState, now: number): void {
    for (const [id, expiry] of s.requests) if (expiry <= now) s.requests.delete(id);
    for (const [id, entry] of s.window) {
      if (entry.expiry <= now) {
        s.window.delete(id);
        s.windowSum -= entry.tokens;
      }
    }
    if (s.window.size === 0) s.windowSum = 0;
  }

  async acquire(provider: string, limits: ResolvedLimits, request: AdmissionRequest): Promise<AdmissionDecision> {
    const s = this.state(provider);
    const now = this.now();
    const tpm = limits.effectiveTpm;
    if (tpm > 0 && request.tokens > tpm) return { kind: 'too-large', effectiveTpm: tpm };

    let bestWait = 0;
    let bestReason: DeferralReason | undefined;
    const consider = (wait: number, reason: DeferralReason) => {
      if (wait > bestWait) {
        bestWait = wait;
        bestReason = reason;
      }
    };

    if (s.cooldownUntil > now) consider(s.cooldownUntil - now, 'cooldown');

    const rate = limits.rpm / limits.windowMs;
    const level = this.level(s, limits, now);
    if (s.holdUntil > now) consider(s.holdUntil - now, 'requests');
    if (level < 1) consider(Math.ceil((1 - level) / rate), 'requests');

    this.trim(s, now);
    const maxInLog = Math.max(1, Math.floor(limits.rpm));
    if (s.requests.size >= maxInLog) {
      const expiries = [...s.requests.values()].sort((a, b) => a - b);
      consider((expiries[s.requests.size - maxInLog] ?? now) - now, 'requests');
    }

    const reserve = tpm > 0 ? request.tokens : 0;
    // A call without an estimate still needs some room: its usage is charged at settle.
    const room = Math.max(reserve, 1);
    if (tpm > 0 && s.windowSum + room > tpm) {
      const need = s.windowSum + room - tpm;
      const entries = [...s.window.values()].sort((a, b) => a.expiry - b.expiry);
      let freed = 0;
      let wait = limits.windowMs;
      for (const entry of entries) {
        freed += entry.tokens;
        if (freed >= need) {
          wait = entry.expiry - now;
          break;
        }
      }
      consider(Math.max(1, wait), 'tokens');
    }

    // Token pacing, as in acquire.lua: wait until the schedule is within one slice of now.
    const paced = tpm > 0 && limits.paceMs > 0;
    const tat = s.tat ?? now;
    if (paced && tat > now + limits.paceMs) consider(Math.max(1, Math.ceil(tat - limits.paceMs - now)), 'tokens');

    const cap = priorityCap(limits, request.priority);
    if (cap > 0) {
      for (const [id, expiry] of s.leases) {
        if (expiry <= now) {
          s.leases.delete(id);
          this.count(s, 'leasesReclaimed');
        }
      }
      if (s.leases.size >= cap) {
        const expiries = [...s.leases.values()].sort((a, b) => a - b);
        const poll = Math.max(10, Math.min(1000, Math.floor((s.holdMsEwma ?? 200) / 4)));
        consider(Math.max(1, Math.min(poll, (expiries[s.leases.size - cap] ?? now) - now)), 'concurrency');
      }
    }

    if (limits.staggerMs > 0 && s.nextSlot > now) consider(s.nextSlot - now, 'stagger');

    if (bestReason) {
      this.count(s, `deferrals:${bestReason}`);
      if (bestReason === 'concurrency') return { kind: 'wait', waitMs: Math.ceil(bestWait), reason: bestReason, slotMs: 0 };
      // Wake-up slots, as in acquire.lua: one per waiter, a launch spacing (+/- jitter) apart.
      const spacing = Math.max(limits.staggerMs, Math.ceil((limits.windowMs + limits.safetyMarginMs) / limits.rpm));
      let slot = now + Math.ceil(bestWait);
      if (request.slotMs === 0 || bestWait > spacing) {
        const gap = spacing + Math.floor(Math.min(spacing * limits.jitterRatio, limits.jitterCapMs) * request.jitter);
        slot = Math.max(slot, s.lastWaitSlot + gap);
        s.lastWaitSlot = slot;
      }
      return { kind: 'wait', waitMs: slot - now, reason: bestReason, slotMs: slot };
    }

    s.level = level - 1;
    s.ts = now;
    s.lastAdmitted = request.id;
    const expiry = now + limits.windowMs + limits.safetyMarginMs;
    s.requests.set(request.id, expiry);
    if (reserve > 0) {
      s.window.set(request.id, { expiry, tokens: reserve });
      s.windowSum += reserve;
      this.count(s, 'tokensReserved', reserve);
    }
    if (paced) {
      s.tat = Math.max(tat, now) + reserve / (tpm / limits.windowMs);
      s.lastPaced = request.id;
    }
    let leaseUntilMs = 0;
    if (cap > 0) {
      leaseUntilMs = now + limits.leaseMs;
      s.leases.set(request.id, leaseUntilMs);
    }
    if (limits.staggerMs > 0) s.nextSlot = now + limits.staggerMs;
    this.count(s, 'calls');
    this.count(s, 'totalWaitMs', Math.floor(request.waitedMs));
    return { kind: 'admitted', nowMs: now, leaseUntilMs, tokens: reserve };
  }

  async settle(provider: string, limits: ResolvedLimits, request: SettleRequest): Promise<SettleOutcome> {
    const s = this.state(provider);
    let tokenDelta = 0;
    const used = request.usedTokens;
    if (limits.effectiveTpm > 0 && used !== undefined) {
      const now = this.now();
      const entry = s.window.get(request.id);
      if (entry) {
        // As in settle.lua: counted at admission, a call's entry may only be raised.
        if (limits.tokenCounting === 'usage' || used > entry.tokens) {
          tokenDelta = used - entry.tokens;
          entry.tokens = used;
          s.windowSum += tokenDelta;
        }
      } else if (used > 0) {
        s.window.set(request.id, { expiry: now + limits.windowMs + limits.safetyMarginMs, tokens: used });
        s.windowSum += used;
        tokenDelta = used;
      }
      this.count(s, 'tokensUsed', used);
      if (limits.paceMs > 0 && tokenDelta !== 0) {
        const rate = limits.effectiveTpm / limits.windowMs;
        const tat = s.tat ?? now;
        if (tokenDelta > 0) s.tat = Math.max(tat, now) + tokenDelta / rate;
        else if (s.lastPaced === request.id) s.tat = tat + tokenDelta / rate;
      }
    }
    const leaseHeld = s.leases.delete(request.id);
    if (request.holdMs !== undefined) {
      s.holdMsEwma = Math.floor(s.holdMsEwma === undefined ? request.holdMs : s.holdMsEwma * 0.8 + request.holdMs * 0.2);
    }
    this.count(s, 'settled');
    return { leaseHeld, tokenDelta };
  }

  async release(provider: string, limits: ResolvedLimits, id: string): Promise<SettleOutcome> {
    const s = this.state(provider);
    const entry = s.window.get(id);
    let refunded = 0;
    if (entry) {
      s.window.delete(id);
      s.windowSum -= entry.tokens;
      refunded = entry.tokens;
    }
    // As in release.lua: only the latest paced admission can take its share back exactly.
    if (refunded > 0 && limits.effectiveTpm > 0 && limits.paceMs > 0 && s.lastPaced === id && s.tat !== undefined) {
      s.tat -= refunded / (limits.effectiveTpm / limits.windowMs);
      s.lastPaced = undefined;
    }
    // As in release.lua: only the latest admission gives its bucket token back, exactly.
    if (s.requests.delete(id) && s.level !== undefined && s.lastAdmitted === id) {
      s.level = Math.min(limits.burst, s.level + 1);
      s.lastAdmitted = undefined;
    }
    const leaseHeld = s.leases.delete(id);
    this.count(s, 'released');
    return { leaseHeld, tokenDelta: -refunded };
  }

  async renew(provider: string, limits: ResolvedLimits, id: string): Promise<number> {
    const s = this.state(provider);
    if (!s.leases.has(id)) return 0;
    const until = this.now() + limits.leaseMs;
    s.leases.set(id, until);
    return until;
  }

  async cooldown(provider: string, request: CooldownRequest): Promise<number> {
    const s = this.state(provider);
    const now = this.now();
    const until = request.retryAfterMs !== undefined ? now + request.retryAfterMs : (request.untilMs ?? 0);
    this.count(s, 'cooldowns');
    if (until > s.cooldownUntil && until > now) s.cooldownUntil = Math.ceil(until);
    return s.cooldownUntil > now ? s.cooldownUntil : 0;
  }

  async syncHeaders(provider: string, limits: ResolvedLimits, snapshot: RateLimitSnapshot): Promise<void> {
    const s = this.state(provider);
    const now = this.now();
    const remaining = snapshot.remainingRequests;
    // Same comparison as sync-headers.lua: only a provider counting more than our request log does corrects us.
    const ourRoom = Math.max(1, Math.floor(limits.rpm)) - [...s.requests.values()].filter((expiry) => expiry > now).length;
    if (remaining !== undefined && remaining < ourRoom) {
      let level = this.level(s, limits, now);
      if (remaining < level) {
        level = remaining;
        this.count(s, 'headerCorrections');
      }
      const reset = snapshot.resetRequestsMs ?? -1;
      if (remaining < 1 && reset > 0) s.holdUntil = Math.max(s.holdUntil, now + reset);
      s.level = level;
      s.ts = now;
      s.lastAdmitted = undefined;
    }
    const remainingTokens = snapshot.remainingTokens;
    if (limits.tpm > 0 && remainingTokens !== undefined) {
      this.trim(s, now);
      // Same comparison as sync-headers.lua: provider room less our headroom share.
      const ours = limits.effectiveTpm - s.windowSum;
      const providerRoom = Math.floor((remainingTokens * limits.effectiveTpm) / limits.tpm);
      if (providerRoom < ours) {
        const synthetic = Math.ceil(ours - providerRoom);
        const reset = snapshot.resetTokensMs ?? -1;
        syncSeq += 1;
        s.window.set(`sync:${syncSeq}`, { expiry: now + (reset > 0 ? reset : limits.windowMs), tokens: synthetic });
        s.windowSum += synthetic;
        this.count(s, 'headerCorrections');
      }
    }
  }

  async stats(provider: string): Promise<LimiterStats> {
    const s = this.state(provider);
    const now = this.now();
    const live = <T>(values: Iterable<T>, expiry: (v: T) => number) => [...values].filter((v) => expiry(v) > now);
    const c = (name: string) => s.counters[name] ?? 0;
    const calls = c('calls');
    const deferrals = Object.fromEntries(DEFERRAL_REASONS.map((r) => [r, c(`deferrals:${r}`)])) as Record<DeferralReason, number>;
    return {
      calls,
      totalWaitMs: c('totalWaitMs'),
      avgWaitMs: calls > 0 ? c('totalWaitMs') / calls : 0,
      deferrals,
      activeLeases: live(s.leases.values(), (e) => e).length,
      tokensInWindow: live(s.window.values(), (e) => e.expiry).reduce((sum, e) => sum + e.tokens, 0),
      requestsInWindow: live(s.requests.values(), (e) => e).length,
      nextSlotAtMs: s.nextSlot,
      cooldownUntilMs: s.cooldownUntil,
      holdUntilMs: s.holdUntil,
      settled: c('settled'),
      released: c('released'),
      cooldowns: c('cooldowns'),
      leasesReclaimed: c('leasesReclaimed'),
      headerCorrections: c('headerCorrections'),
      tokensReserved: c('tokensReserved'),
      tokensUsed: c('tokensUsed'),
      avgHoldMs: s.holdMsEwma ?? 0,
      nowMs: now,
    };
  }
}
