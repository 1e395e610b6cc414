/**
 * Replies that mean "this Redis cannot serve right now", not "the command is wrong". OOM is
 * one: a Redis at its maxmemory under `noeviction` (as brandq requires) refuses writes until
 * memory is freed, which is an outage to wait out, never a reason to drop a paid answer.
 */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|OOM)\b/;
const CONNECTION_TROUBLE =
  /Connection is closed|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|Stream isn't writeable|Failed to refresh slots cache|None of startup nodes is available/i;

/**
 * The connection to Redis is gone (refused, reset, unreachable, retries used up), as opposed
 * to a Redis that answers but cannot serve (see `isRedisUnavailable`) or a failing command.
 */
export function isRedisConnectionLost(err: unknown): boolean {
  if (!(err instanceof Error) || err.name === 'ReplyError') return false;
  return err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError' || CONNECTION_TROUBLE.test(err.message);
}

/** A failure to reach or write to Redis (worth retrying), as opposed to an error of the command itself. */
export function isRedisUnavailable(err: unknown): boolean {
  if (err instanceof Error && err.name === 'ReplyError') return UNAVAILABLE_REPLY.test(err.message);
  return isRedisConnectionLost(err);
}

export interface OutageRetryOptions {
  /** How long to keep trying before the last error is thrown. */
  retryForMs: number;
  /** Told of every failed try that will be retried (log it, count it). */
  onRetry?: (err: Error, waitMs: number) => void;
}

/**
 * Runs a write that must not be lost (money booked, a paid answer stored) through a Redis
 * outage: retried with backoff (100 ms doubling to 2 s) while Redis is unavailable, for up
 * to `retryForMs`. Any other error is thrown at once.
 */
export async function retryWhileUnavailable<T>(command: () => Promise<T>, options: OutageRetryOptions): Promise<T> {
  const deadline = Date.now() + options.retryForMs;
  let waitMs = 100;
  for (;;) {
    try {
      return await command();
    } catch (err) {
      if (!isRedisUnavailable(err) || Date.now() + waitMs > deadline) throw err;
      options.onRetry?.(err as Error, waitMs);
      await new Promise((r) => setTimeout(r, waitMs));
      waitMs = Math.min(waitMs * 2, 2000);
    }
  }
}
