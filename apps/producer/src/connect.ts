import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { ConfigError } from '@brandq/errors';
import { createRedis, pings, redactUrl } from '@brandq/redis';

/** Opens the client connection, or one clear error naming REDIS_URL when Redis is not there. */
export async function connectRedis(config: Config): Promise<Redis> {
  if (!(await pings(config.REDIS_URL, 3000))) {
    throw new ConfigError(`cannot reach Redis at ${redactUrl(config.REDIS_URL)}: start redis-server or set REDIS_URL`);
  }
  return createRedis(config.REDIS_URL, 'client');
}
