/**
 * Runs' shares of a provider's admitted calls, from the fake provider's own request ledger
 * (not from brandq's counters): each request is attributed to its run by its brand name,
 * which starts with the run's label.
 */
import type { LedgerEntry } from './workspace.js';

export interface WeightedRun {
  /** The run's id in brandq. */
  id: string;
  /** The first word of every brand name of the run (`<label> 000001`). */
  label: string;
  weight: number;
}

/** One admitted request at the provider, attributed to a run. */
export interface RunCall {
  at: number;
  run: string;
}

/** The requests the provider let through past its own limiter, attributed to `runs` by brand name (others left out). */
export function admittedCallsOf(entries: Iterable<LedgerEntry>, runs: readonly WeightedRun[]): RunCall[] {
  const byLabel = new Map(runs.map((r) => [r.label, r.id]));
  const calls: RunCall[] = [];
  for (const e of entries) {
    if (!e.admitted || e.brand === null) continue;
    const space = e.brand.indexOf(' ');
    const run = space > 0 ? byLabel.get(e.brand.slice(0, space)) : undefined;
    if (run !== undefined) calls.push({ at: e.at, run });
  }
  return calls.sort((a, b) => a.at - b.at);
}

export interface RunShareInWindow {
  run: string;
  calls: number;
  share: number;
  /** weight / the sum of the weights. */
  due: number;
  /** share - due, in shares (0.01 = one percentage point). */
  deviation: number;
}

export interface ShareWindow {
  from: number;
  to: number;
  calls: number;
  runs: RunShareInWindow[];
  /** The largest |deviation| of any run in the window. */
  maxDeviation: number;
}

/** Every run's share of the calls in [from, to). */
export function sharesIn(calls: readonly RunCall[], runs: readonly WeightedRun[], from: number, to: number): ShareWindow {
  const total = runs.reduce((sum, r) => sum + r.weight, 0);
  const counts = new Map<string, number>();
  let all = 0;
  for (const c of calls) {
    if (c.at < from || c.at >= to) continue;
    counts.set(c.run, (counts.get(c.run) ?? 0) + 1);
    all += 1;
  }
  const shares = runs.map((r) => {
    const n = counts.get(r.id) ?? 0;
    const share = all === 0 ? 0 : n / all;
    const due = r.weight / total;
    return { run: r.id, calls: n, share, due, deviation: share - due };
  });
  return { from, to, calls: all, runs: shares, maxDeviation: Math.max(0, ...shares.map((s) => Math.abs(s.deviation))) };
}

/** Back-to-back windows of `windowMs` from `from`; a last window that would end after `to` is left out. */
export function tumblingWindows(calls: readonly RunCall[], runs: readonly WeightedRun[], from: number, to: number, windowMs: number): ShareWindow[] {
  const windows: ShareWindow[] = [];
  for (let start = from; start + windowMs <= to; start += windowMs) windows.push(sharesIn(calls, runs, start, start + windowMs));
  return windows;
}

/** The window of `windowMs`, starting every `stepMs` in [from, to - windowMs], where some run is furthest from its due share. */
export function worstSlidingWindow(calls: readonly RunCall[], runs: readonly WeightedRun[], from: number, to: number, windowMs: number, stepMs: number): ShareWindow | undefined {
  let worst: ShareWindow | undefined;
  for (let start = from; start + windowMs <= to; start += stepMs) {
    const w = sharesIn(calls, runs, start, start + windowMs);
    if (!worst || w.maxDeviation > worst.maxDeviation) worst = w;
  }
  return worst;
}

/** Admitted calls in [from, to). */
export function callsIn(calls: readonly { at: number }[], from: number, to: number): number {
  let n = 0;
  for (const c of calls) if (c.at >= from && c.at < to) n += 1;
  return n;
}

/** The longest stretch in [from, to) without a call (the edges count as calls). */
export function longestGap(calls: readonly { at: number }[], from: number, to: number): { fromMs: number; ms: number } {
  let last = from;
  let best = { fromMs: from, ms: 0 };
  for (const c of [...calls].sort((a, b) => a.at - b.at)) {
    if (c.at < from || c.at >= to) continue;
    if (c.at - last > best.ms) best = { fromMs: last, ms: c.at - last };
    last = c.at;
  }
  return to - last > best.ms ? { fromMs: last, ms: to - last } : best;
}
