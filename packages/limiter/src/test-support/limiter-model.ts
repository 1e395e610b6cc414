import { priorityCap } from '../limiter-store.js';
import type { Priority, ResolvedLimits } from '../types.js';

/** One admission as the provider sees it, and the permit that holds it. */
export interface ModelPermit {
  readonly id: string;
  /** Store clock ms of the admission. */
  readonly at: number;
  readonly reserved: number;
  readonly priority: Priority;
  /** Tokens the provider counts for it now: the reservation, raised (or in 'usage' counting, corrected) at settle. */
  counted: number;
  /** Store clock ms the lease runs until (0 = none or gone). */
  leaseUntil: number;
  /** held: live and renewing; killed: its process died (never renews, never ends it). */
  state: 'held' | 'killed' | 'settled' | 'released';
}

/**
 * A pure reference model of what one provider's limiter must guarantee, on the store's own
 * clock: a ledger of admissions as the provider counts them (a released call was never
 * sent, so it is not in it), the leases their permits hold, and the cooldown in force. The
 * store's internals (bucket level, schedule, wake-up slots) are not modelled: every
 * admission is checked against what a provider enforcing the configured limits would allow.
 */
export class LimiterModel {
  readonly permits: ModelPermit[] = [];
  cooldownUntil = 0;

  constructor(readonly limits: ResolvedLimits) {}

  /** Permits a live process still holds: the ones it may settle, release, renew, or die with. */
  held(): ModelPermit[] {
    return this.permits.filter((p) => p.state === 'held');
  }

  /** Leases the store must count at `now`: every permit not ended whose lease has not run out. */
  liveLeases(now: number): number {
    return this.permits.filter((p) => (p.state === 'held' || p.state === 'killed') && p.leaseUntil > now).length;
  }

  /** Why admitting `tokens` (priority `priority`) at store time `t` breaks a guarantee; empty when it does not. */
  admissionViolations(t: number, tokens: number, priority: Priority): string[] {
    const { rpm, burst, effectiveTpm, windowMs, paceMs } = this.limits;
    const ledger = this.permits.filter((p) => p.state !== 'released' && p.at <= t);
    const out: string[] = [];
    if (t < this.cooldownUntil) out.push(`admitted at ${t} during a cooldown until ${this.cooldownUntil}`);
    if (effectiveTpm > 0 && tokens > effectiveTpm) out.push(`admitted ${tokens} tokens, more than a whole window (${effectiveTpm})`);

    const inWindow = ledger.filter((p) => p.at > t - windowMs);
    if (inWindow.length + 1 > Math.max(1, Math.floor(rpm))) out.push(`${inWindow.length + 1} requests in the window ending at ${t} (rpm ${rpm})`);
    const windowTokens = inWindow.reduce((sum, p) => sum + p.counted, 0) + tokens;
    if (effectiveTpm > 0 && windowTokens > effectiveTpm) out.push(`${windowTokens} tokens in the window ending at ${t} (limit ${effectiveTpm})`);

    if (paceMs > 0) {
      // Conformance to a provider bucket holding one slice: from any earlier admission at s
      // up to t, no more than the bucket plus its refill (requests, this one included), and
      // no more tokens than the schedule's rate over (t - s + one slice), this call excluded.
      const requestRate = rpm / windowMs;
      const tokenRate = effectiveTpm / windowMs;
      for (const s of new Set([...ledger.map((p) => p.at), t])) {
        const since = ledger.filter((p) => p.at >= s);
        const requests = since.length + 1;
        if (requests > burst + requestRate * (t - s) + 1e-9) out.push(`${requests} requests in [${s}, ${t}] (bucket ${burst}, rate ${requestRate}/ms)`);
        const sliceTokens = since.reduce((sum, p) => sum + p.counted, 0);
        const allowed = tokenRate * (t - s + paceMs);
        // The Redis schedule is kept to 1 µs: allow that rounding, nothing more.
        if (effectiveTpm > 0 && sliceTokens > allowed + tokenRate * 0.05 + 1e-6) out.push(`${sliceTokens} tokens in [${s}, ${t}] before this call (pace allows ${allowed.toFixed(1)})`);
      }
    }

    const cap = priorityCap(this.limits, priority);
    const leases = this.liveLeases(t);
    if (cap > 0 && leases >= cap) out.push(`admitted with ${leases} live leases (cap ${cap} for ${priority})`);
    return out;
  }

  admit(permit: Omit<ModelPermit, 'counted' | 'state'>): void {
    this.permits.push({ ...permit, counted: permit.reserved, state: 'held' });
  }

  /** The call was sent; `used` is the usage it reported (undefined: unknown, the reservation stands). */
  settle(permit: ModelPermit, used: number | undefined): void {
    permit.state = 'settled';
    permit.leaseUntil = 0;
    if (used === undefined || this.limits.effectiveTpm === 0) return;
    permit.counted = this.limits.tokenCounting === 'usage' ? used : Math.max(permit.counted, used);
  }

  /** The call was never sent: the provider never counted it. */
  release(permit: ModelPermit): void {
    permit.state = 'released';
    permit.leaseUntil = 0;
  }

  /** `until` is what the store answered: the new expiry, or 0 when the lease was gone. */
  renew(permit: ModelPermit, until: number): void {
    permit.leaseUntil = until;
  }

  kill(permit: ModelPermit): void {
    permit.state = 'killed';
  }
}
