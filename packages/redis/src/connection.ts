import { Redis, type RedisOptions } from 'ioredis';

export type ConnectionRole =
  /** Blocking consumers (BullMQ Worker, QueueEvents): commands wait for a reconnect. */
  | 'worker'
  /** Producers, CLIs and limiter calls: fail fast when Redis is down instead of queueing. */
  | 'client';

/**
 * One place that decides how brandq talks to Redis. BullMQ requires
 * `maxRetriesPerRequest: null` for workers; everything else fails fast so a Redis outage
 * surfaces as a clear error instead of a silent hang.
 */
export function createRedis(url: string, role: ConnectionRole = 'client', extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 5000 };
  return new Redis(url, {
    ...base,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    ...extra,
  });
}
