/** Exponential backoff with +/-20% jitter: base, 2x base, 4x base, ... capped. */
export function exponentialBackoffMs(attempt: number, baseMs: number, capMs = 5 * 60_000, random: () => number = Math.random): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const jitter = 1 + (random() * 2 - 1) * 0.2;
  return Math.max(0, Math.round(raw * jitter));
}
