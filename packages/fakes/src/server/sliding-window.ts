interface WindowEvent {
  at: number;
  weight: number;
}

/**
 * Sliding-window counter: an event at `at` counts while `now - at < windowMs`.
 * Weights are 1 for request limits and token counts for token limits. The same
 * half-open rule is used by Ledger.maxInAnyWindow so the ledger's ground truth
 * and the fake's enforcement never disagree about a boundary.
 */
export class SlidingWindow {
  private events: WindowEvent[] = [];

  constructor(public windowMs: number) {}

  private prune(now: number): void {
    let drop = 0;
    while (drop < this.events.length && now - (this.events[drop]?.at ?? now) >= this.windowMs) drop++;
    if (drop > 0) this.events.splice(0, drop);
  }

  used(now: number): number {
    this.prune(now);
    let sum = 0;
    for (const e of this.events) sum += e.weight;
    return sum;
  }

  add(at: number, weight: number): void {
    // Arrival order is time order except for clock steps; keep the array sorted so pruning stays correct.
    let i = this.events.length;
    while (i > 0 && (this.events[i - 1]?.at ?? 0) > at) i--;
    this.events.splice(i, 0, { at, weight });
  }

  /** Milliseconds until `used + weight <= limit` holds; 0 if it already does. */
  waitMs(now: number, weight: number, limit: number): number {
    let used = this.used(now);
    if (used + weight <= limit) return 0;
    for (const e of this.events) {
      used -= e.weight;
      if (used + weight <= limit) return Math.max(1, e.at + this.windowMs - now);
    }
    // Larger than the whole limit: it never fits, announce a full window.
    return this.windowMs;
  }

  /** Milliseconds until every event counted now has left the window (OpenAI's "reset to initial state"). */
  resetMs(now: number): number {
    this.prune(now);
    const last = this.events[this.events.length - 1];
    return last ? Math.max(0, last.at + this.windowMs - now) : 0;
  }

  clear(): void {
    this.events = [];
  }
}
