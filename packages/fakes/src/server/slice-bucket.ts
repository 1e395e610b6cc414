/**
 * A provider's per-slice enforcement of a per-window limit, as a GCRA (debt bucket).
 *
 * Providers quantize their limits ("60,000 requests/minute may be enforced as 1,000
 * requests/second"), so a burst the minute window would allow still draws 429s. The
 * bucket drains at `rate = limit / windowMs`; its theoretical arrival time (TAT) is the
 * instant the work admitted so far would have drained at that rate. A request is
 * admitted while `TAT <= now + toleranceMs` (the tolerance is one slice of the minute,
 * or a fraction of one), whatever its weight: a single request larger than a slice's
 * share is admitted once the schedule has caught up, and pushes the TAT ahead by its
 * whole weight so the next ones wait for it. Charging moves
 * `TAT = max(TAT, now) + weight / rate`.
 */
export class SliceBucket {
  /** -Infinity: nothing admitted yet, the schedule is caught up at any instant. */
  private tat = Number.NEGATIVE_INFINITY;

  /** Milliseconds until a request is admitted; 0 when it is admitted now. */
  waitMs(now: number, toleranceMs: number): number {
    return Math.max(0, this.tat - toleranceMs - now);
  }

  /** Counts `weight` units of a `limit` per `windowMs` (a limit of 0 or less admits nothing more, ever). */
  charge(now: number, weight: number, limit: number, windowMs: number): void {
    if (weight <= 0) return;
    const msPerUnit = limit > 0 ? windowMs / limit : Number.POSITIVE_INFINITY;
    this.tat = Math.max(this.tat, now) + weight * msPerUnit;
  }
}
