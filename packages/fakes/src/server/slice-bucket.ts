/**
 * A provider's per-slice enforcement of a per-window limit, as a debt bucket (GCRA).
 *
 * Providers quantize their limits ("60,000 requests/minute may be enforced as 1,000
 * requests/second"), so a burst the minute window would allow still draws 429s. The
 * bucket holds the units (requests or tokens) counted so far and drains them at
 * `rate = limit / windowMs`; `debt / rate` is how far the schedule of what was counted
 * runs ahead of now (GCRA's theoretical arrival time minus now). A request is admitted
 * while that lead is at most `toleranceMs` (one slice of the minute, or a fraction of
 * one), whatever its weight: a single request larger than a slice's share is admitted
 * once the schedule has caught up, and its whole weight then delays the next ones.
 *
 * Debt is kept in units rather than as a TAT instant so that a limit changed through
 * `/__fake/config` applies at once: the same debt drains at the new rate.
 */
export class SliceBucket {
  private debt = 0;
  private drainedAt = Number.NEGATIVE_INFINITY;

  /**
   * Milliseconds until a request is admitted; 0 when it is admitted now. A limit of 0
   * never drains: `windowMs` is announced, as the sliding window does for what never fits.
   */
  waitMs(now: number, limit: number, windowMs: number, toleranceMs: number): number {
    const rate = limit / windowMs;
    this.drain(now, rate);
    if (rate <= 0) return this.debt > 0 ? windowMs : 0;
    const lead = this.debt / rate;
    // The epsilon absorbs float error so a client waiting exactly the announced time gets in.
    return lead <= toleranceMs + 1e-6 ? 0 : Math.ceil(lead - toleranceMs);
  }

  /** Counts `weight` units against a `limit` per `windowMs`. */
  charge(now: number, weight: number, limit: number, windowMs: number): void {
    this.drain(now, limit / windowMs);
    this.debt += Math.max(0, weight);
  }

  private drain(now: number, rate: number): void {
    // A clock step backwards drains nothing rather than adding debt.
    if (now <= this.drainedAt) return;
    if (this.drainedAt !== Number.NEGATIVE_INFINITY && rate > 0) {
      this.debt = Math.max(0, this.debt - (now - this.drainedAt) * rate);
    }
    this.drainedAt = now;
  }
}
