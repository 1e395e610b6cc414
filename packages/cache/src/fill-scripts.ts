import type { Redis } from 'ioredis';
import { defineScripts, type cacheKeys } from '@brandq/redis';

const lua = (name: string) => new URL(`../lua/${name}.lua`, import.meta.url);

const SCRIPTS = [
  { name: 'brandqCacheGetOrClaim', file: lua('get-or-claim'), numberOfKeys: 2 },
  { name: 'brandqCacheStoreAndRelease', file: lua('store-and-release'), numberOfKeys: 2 },
  { name: 'brandqReleaseFillLock', file: lua('release-fill-lock'), numberOfKeys: 1 },
  { name: 'brandqRenewFillLock', file: lua('renew-fill-lock'), numberOfKeys: 1 },
] as const;

interface ScriptedRedis extends Redis {
  brandqCacheGetOrClaim(value: string, lock: string, token: string, lockMs: number): Promise<ClaimReply>;
  brandqCacheStoreAndRelease(value: string, lock: string, json: string, ttlSeconds: number, token: string): Promise<StoreReply>;
  brandqReleaseFillLock(lock: string, token: string): Promise<number>;
  brandqRenewFillLock(lock: string, token: string, ms: number): Promise<RenewReply>;
}

export type CacheKeys = ReturnType<typeof cacheKeys>;
/** {1, value} a hit, {2} this caller holds the fill lock, {0} another filler does. */
export type ClaimReply = [1, string] | [2] | [0];
/** 1 stored by the lock's holder, 2 stored late into an uncontested key, 0 fenced off. */
export type StoreReply = 0 | 1 | 2;
/** 1 renewed, 0 the lock is gone, -1 another filler holds it. */
export type RenewReply = 1 | 0 | -1;

/**
 * The fill protocol of one cache key as atomic Lua steps (see the `.lua` files for each
 * step's rules). A filler's token fences every step: nothing here lets one filler renew,
 * release or overwrite what another filler holds.
 */
export class FillScripts {
  private readonly redis: ScriptedRedis;

  constructor(redis: Redis) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as ScriptedRedis;
  }

  getOrClaim(keys: CacheKeys, token: string, lockMs: number): Promise<ClaimReply> {
    return this.redis.brandqCacheGetOrClaim(keys.value, keys.lock, token, lockMs);
  }

  storeAndRelease(keys: CacheKeys, json: string, ttlSeconds: number, token: string): Promise<StoreReply> {
    return this.redis.brandqCacheStoreAndRelease(keys.value, keys.lock, json, ttlSeconds, token);
  }

  release(keys: CacheKeys, token: string): Promise<number> {
    return this.redis.brandqReleaseFillLock(keys.lock, token);
  }

  renew(keys: CacheKeys, token: string, lockMs: number): Promise<RenewReply> {
    return this.redis.brandqRenewFillLock(keys.lock, token, lockMs);
  }
}
