/** Doubling backoff without jitter: base, 2x base, 4x base, ... capped. */
export function doublingBackoffMs(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** Exponential backoff with +/-20% jitter: base, 2x base, 4x base, ... capped. */
export function exponentialBackoffMs(attempt: number, baseMs: number, capMs = 5 * 60_000, random: () => number = Math.random): number {
  const jitter = 1 + (random() * 2 - 1) * 0.2;
  return Math.max(0, Math.round(doublingBackoffMs(attempt, baseMs, capMs) * jitter));
}
