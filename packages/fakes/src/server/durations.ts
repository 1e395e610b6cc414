/** Trims "1.500" to "1.5" and "2.000" to "2" so durations read like the providers' own. */
function trimDecimals(n: number): string {
  return String(Number(n.toFixed(3)));
}

/**
 * Go-style duration as OpenAI prints it in x-ratelimit-reset-* headers:
 * `12ms`, `1s`, `17.6s`, `6m0s`, `1h2m3s`.
 */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = (total % 60_000) / 1000;
  if (hours > 0) return `${hours}h${minutes}m${trimDecimals(seconds)}s`;
  if (minutes > 0) return `${minutes}m${trimDecimals(seconds)}s`;
  return `${trimDecimals(seconds)}s`;
}

/** The wait inside OpenAI's 429 message: "Please try again in 1.234s." / "in 20ms." */
export function formatTryAgainIn(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total < 1000) return `${total}ms`;
  return `${trimDecimals(total / 1000)}s`;
}
