import type { FillLockLoss } from './fill-lock.js';

/**
 * What the result cache tells the worker about fills that did not go to plan (metrics);
 * `namespace` is the provider the cache serves ('tavily', 'llm').
 */
export interface ResultCacheObserver {
  /** A filler learned, while its paid call ran, that its fill lock was no longer its own. */
  fillLockLost(namespace: string, reason: FillLockLoss): void;
  /**
   * A paid answer could not be stored: `oom` a full Redis (maxmemory, noeviction),
   * `unavailable` Redis unreachable, `error` anything else. The answer was still returned.
   */
  storeFailed(namespace: string, reason: 'oom' | 'unavailable' | 'error'): void;
  /** A paid answer was not stored because a newer filler holds the key or stored its own. */
  storeFenced(namespace: string): void;
  /** A waiter reached its deadline while another filler still held the key, and gave up. */
  waitTimedOut(namespace: string): void;
}

/** Where the cache warns about a paid answer it could not store or a fill lock it lost. */
export interface CacheLogger {
  warn(obj: object, msg: string): void;
}

export const silentCacheObserver: ResultCacheObserver = {
  fillLockLost: () => undefined,
  storeFailed: () => undefined,
  storeFenced: () => undefined,
  waitTimedOut: () => undefined,
};

export const silentCacheLogger: CacheLogger = { warn: () => undefined };
