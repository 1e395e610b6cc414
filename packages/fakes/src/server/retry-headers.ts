/** Which Retry-After forms a 429 carries, so clients can be tested against each. */
export type RetryAfterMode = 'seconds' | 'ms' | 'both' | 'date' | 'none';

export const RETRY_AFTER_MODES: readonly RetryAfterMode[] = ['seconds', 'ms', 'both', 'date', 'none'];

export function retryAfterHeaders(mode: RetryAfterMode, waitMs: number, now: number): Record<string, string> {
  const ms = Math.max(0, Math.ceil(waitMs));
  // Whole seconds rounded up: a client honouring the header must never come back early.
  const seconds = String(Math.ceil(ms / 1000));
  switch (mode) {
    case 'seconds':
      return { 'retry-after': seconds };
    case 'ms':
      return { 'retry-after-ms': String(ms) };
    case 'both':
      return { 'retry-after': seconds, 'retry-after-ms': String(ms) };
    case 'date':
      // HTTP dates have 1 s resolution; round the instant up for the same reason.
      return { 'retry-after': new Date(Math.ceil((now + ms) / 1000) * 1000).toUTCString() };
    case 'none':
      return {};
  }
}
