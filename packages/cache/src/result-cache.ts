import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { cacheKeys, defineScripts } from '@brandq/redis';

const lua = (name: string) => new URL(`../lua/${name}.lua`, import.meta.url);

const SCRIPTS = [
  { name: 'brandqCacheGetOrClaim', file: lua('get-or-claim'), numberOfKeys: 2 },
  { name: 'brandqCacheStoreAndRelease', file: lua('store-and-release'), numberOfKeys: 2 },
  { name: 'brandqReleaseFillLock', file: lua('release-fill-lock'), numberOfKeys: 1 },
  { name: 'brandqRenewFillLock', file: lua('renew-fill-lock'), numberOfKeys: 1 },
] as const;

interface ScriptedRedis extends Redis {
  brandqCacheGetOrClaim(value: string, lock: string, token: string, lockMs: number): Promise<[1, string] | [2] | [0]>;
  brandqCacheStoreAndRelease(value: string, lock: string, json: string, ttlSeconds: number, token: string): Promise<number>;
  brandqReleaseFillLock(lock: string, token: string): Promise<number>;
  brandqRenewFillLock(lock: string, token: string, ms: number): Promise<number>;
}

export interface CacheOutcome<T> {
  value: T;
  /** True when the value came from the cache and nothing was paid. */
  hit: boolean;
}

export interface ResultCacheOptions {
  ttlSeconds: number;
  /**
   * Length of a filler's right to compute a key. A live filler renews it every third of
   * this, so it only bounds how long others wait after a filler died (default 10 s).
   */
  fillLockMs?: number;
  /** First wait of a caller that found another filler at work; doubles up to 1 s. */
  waitStartMs?: number;
}

/** Stable hash of what determines a provider's answer (query and options, or model, prompt and schema). */
export function cacheKeyOf(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * Provider answers cached in Redis by what determines them. Two workers missing the same
 * key at once make one paid call: the first takes a fill lock and computes, the others
 * wait for its value (and take over if it dies: the lock expires).
 */
export class ResultCache {
  private readonly redis: ScriptedRedis;
  private readonly fillLockMs: number;
  private readonly waitStartMs: number;

  constructor(redis: Redis, private readonly options: ResultCacheOptions) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as ScriptedRedis;
    this.fillLockMs = options.fillLockMs ?? 10_000;
    this.waitStartMs = options.waitStartMs ?? 25;
  }

  async getOrCompute<T>(namespace: string, hash: string, compute: () => Promise<T>, signal?: AbortSignal): Promise<CacheOutcome<T>> {
    const keys = cacheKeys(namespace, hash);
    let waitMs = this.waitStartMs;
    const token = randomUUID();
    for (;;) {
      const found = await this.redis.brandqCacheGetOrClaim(keys.value, keys.lock, token, this.fillLockMs);
      if (found[0] === 1) return { value: JSON.parse(found[1]) as T, hit: true };
      if (found[0] === 2) {
        const renewal = setInterval(() => {
          this.redis.brandqRenewFillLock(keys.lock, token, this.fillLockMs).catch(() => undefined);
        }, Math.max(100, Math.floor(this.fillLockMs / 3)));
        renewal.unref();
        let value: T;
        try {
          value = await compute();
        } catch (err) {
          await this.redis.brandqReleaseFillLock(keys.lock, token);
          throw err;
        } finally {
          clearInterval(renewal);
        }
        await this.redis.brandqCacheStoreAndRelease(keys.value, keys.lock, JSON.stringify(value), Math.max(1, Math.round(this.options.ttlSeconds)), token);
        return { value, hit: false };
      }
      signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, waitMs));
      waitMs = Math.min(1000, waitMs * 2);
    }
  }
}
