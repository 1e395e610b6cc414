/**
 * Spreads a wait by +/- `ratio` of itself, the spread capped at `capMs`, so workers told
 * to wait for the same moment do not all wake together and stampede Redis. Never below 1 ms.
 */
export function jitteredDelay(waitMs: number, ratio: number, capMs: number, random: () => number = Math.random): number {
  const spread = Math.min(waitMs * ratio, capMs);
  return Math.max(1, Math.round(waitMs + spread * (2 * random() - 1)));
}
