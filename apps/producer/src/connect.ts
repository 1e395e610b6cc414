import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { ConfigError } from '@brandq/errors';
import { createRedis, pings, redactUrl } from '@brandq/redis';

export interface ConnectOptions {
  /** Where the "retrying" notice goes (stderr by default). */
  notice?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Opens the client connection. When Redis does not answer, says so once and retries with
 * exponential backoff (0.25 s doubling to 5 s) for up to `REDIS_CONNECT_TIMEOUT_SECONDS`,
 * then fails with one clear error naming REDIS_URL. Nothing is read or written before
 * Redis answered, so a producer that gives up has enqueued nothing.
 */
export async function connectRedis(config: Config, options: ConnectOptions = {}): Promise<Redis> {
  const notice = options.notice ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const where = redactUrl(config.REDIS_URL);
  const started = Date.now();
  const deadline = started + config.REDIS_CONNECT_TIMEOUT_SECONDS * 1000;
  let attempts = 0;
  let waitMs = 250;
  for (;;) {
    attempts += 1;
    if (await pings(config.REDIS_URL, 3000)) break;
    const left = deadline - Date.now();
    if (left <= 0) {
      const waited = Math.round((Date.now() - started) / 1000);
      throw new ConfigError(
        `cannot reach Redis at ${where} (${attempts} attempt${attempts === 1 ? '' : 's'} over ${waited} s): start redis-server or set REDIS_URL` +
          (config.REDIS_CONNECT_TIMEOUT_SECONDS > 0 ? '' : ' (REDIS_CONNECT_TIMEOUT_SECONDS=0: no retries)'),
        { details: { redis: where, attempts } },
      );
    }
    if (attempts === 1) notice(`Redis at ${where} is not answering; retrying for up to ${config.REDIS_CONNECT_TIMEOUT_SECONDS} s (REDIS_CONNECT_TIMEOUT_SECONDS)`);
    await sleep(Math.min(waitMs, left));
    waitMs = Math.min(waitMs * 2, 5000);
  }
  if (attempts > 1) notice(`Redis at ${where} answered after ${attempts} attempts`);
  return createRedis(config.REDIS_URL, 'client');
}
