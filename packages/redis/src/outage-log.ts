import { isRedisConnectionLost } from './unavailable.js';

export interface OutageLogger {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * Redis connection errors arrive from every connection of a process (its own, a queue's,
 * BullMQ's duplicates) on every reconnect attempt: `down` logs one structured line when Redis
 * goes and `up` one when it is back, never a line per attempt or a stack. `lost(err)` says
 * whether an error is such a lost connection (log anything else as the error it is).
 */
export function redisOutageLog(logger: OutageLogger) {
  let downSince: number | undefined;
  return {
    lost: isRedisConnectionLost,
    down(err: Error) {
      if (downSince !== undefined) return;
      downSince = Date.now();
      logger.error({ event: 'redis_down', err: err.message, code: (err as NodeJS.ErrnoException).code }, 'Redis unreachable; retrying until it is back');
    },
    up() {
      if (downSince === undefined) return;
      logger.info({ event: 'redis_up', downForMs: Date.now() - downSince }, 'Redis reachable again');
      downSince = undefined;
    },
  };
}
