import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { TransientError } from '@brandq/errors';
import { NoAnswerError, cacheKeys, isRedisUnavailable, within } from '@brandq/redis';
import { silentCacheLogger, silentCacheObserver, type CacheLogger, type ResultCacheObserver } from './cache-observer.js';
import { FillLock, type FillLockLoss } from './fill-lock.js';
import { FillScripts, type CacheKeys, type ClaimReply, type StoreReply } from './fill-scripts.js';

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
  /**
   * How long a caller waits for another filler's value before it gives up with a
   * TransientError (its job retries later and most likely finds the value). Giving up
   * rather than claiming the key: the other filler is alive (it renews its lock), so
   * claiming would pay twice. Set it a little over the provider's timeout plus its wait
   * for a limiter permit; default `fillLockMs` + 60 s (the default OpenAI timeout).
   */
  waitTimeoutMs?: number;
  observer?: ResultCacheObserver;
  logger?: CacheLogger;
}

export interface ResultCacheStats {
  /** Fills whose lock was found taken or gone, or could not be renewed, while they computed. */
  fillLocksLost: number;
  /** Paid answers Redis refused to store (full, unreachable); each was still returned. */
  storeFailures: number;
  /** Paid answers not stored because a newer filler holds or filled the key. */
  fencedStores: number;
  /** Waiters that gave up at their deadline. */
  waitTimeouts: number;
}

/** Stable hash of what determines a provider's answer (query and options, or model, prompt and schema). */
export function cacheKeyOf(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * Provider answers cached in Redis by what determines them. Two workers missing the same
 * key at once make one paid call: the first takes a fill lock and computes, the others
 * wait for its value (and take over if it dies: the lock expires). A paid answer always
 * reaches its caller, even when Redis cannot store it (full or unreachable).
 */
export class ResultCache {
  private readonly scripts: FillScripts;
  private readonly fillLockMs: number;
  private readonly waitStartMs: number;
  private readonly waitTimeoutMs: number;
  private readonly observer: ResultCacheObserver;
  private readonly log: CacheLogger;
  private readonly counters: ResultCacheStats = { fillLocksLost: 0, storeFailures: 0, fencedStores: 0, waitTimeouts: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly options: ResultCacheOptions,
  ) {
    this.scripts = new FillScripts(redis);
    this.fillLockMs = options.fillLockMs ?? 10_000;
    this.waitStartMs = options.waitStartMs ?? 25;
    this.waitTimeoutMs = options.waitTimeoutMs ?? this.fillLockMs + 60_000;
    this.observer = options.observer ?? silentCacheObserver;
    this.log = options.logger ?? silentCacheLogger;
  }

  get stats(): ResultCacheStats {
    return { ...this.counters };
  }

  /** The cached answer, if there is one, without taking a fill (what the preflight estimate asks). */
  async peek<T>(namespace: string, hash: string): Promise<T | undefined> {
    const value = await this.redis.get(cacheKeys(namespace, hash).value);
    return value === null ? undefined : (JSON.parse(value) as T);
  }

  /**
   * The cached answer, or `compute()`'s, paid once across the fleet. Throws a
   * TransientError when Redis cannot take the fill (full, unreachable: nothing was paid)
   * or another filler outlasted `waitTimeoutMs`; throws the signal's reason when aborted.
   */
  async getOrCompute<T>(namespace: string, hash: string, compute: () => Promise<T>, signal?: AbortSignal): Promise<CacheOutcome<T>> {
    const keys = cacheKeys(namespace, hash);
    const token = randomUUID();
    const waitDeadline = Date.now() + this.waitTimeoutMs;
    let waitMs = this.waitStartMs;
    for (;;) {
      signal?.throwIfAborted();
      const claimedAt = Date.now();
      const found = await this.getOrClaim(keys, token);
      if (found[0] === 1) return { value: JSON.parse(found[1]) as T, hit: true };
      if (found[0] === 2) return { value: await this.fill(namespace, keys, token, claimedAt, compute), hit: false };
      const leftMs = waitDeadline - Date.now();
      if (leftMs <= 0) {
        this.counters.waitTimeouts += 1;
        this.observer.waitTimedOut(namespace);
        throw new TransientError(`another worker is still computing this ${namespace} answer after ${this.waitTimeoutMs} ms`, { details: { namespace } });
      }
      await sleep(Math.min(waitMs, leftMs), signal);
      waitMs = Math.min(1000, waitMs * 2);
    }
  }

  private async getOrClaim(keys: CacheKeys, token: string): Promise<ClaimReply> {
    try {
      return await this.scripts.getOrClaim(keys, token, this.fillLockMs);
    } catch (err) {
      // Nothing is paid yet: a full or unreachable Redis is an outage the job waits out.
      if (isRedisUnavailable(err)) throw new TransientError(`cache lookup failed: ${errorText(err)}`, { cause: err });
      throw err;
    }
  }

  /** Computes as the key's filler, holding its fill lock meanwhile, and stores the answer. */
  private async fill<T>(namespace: string, keys: CacheKeys, token: string, claimedAt: number, compute: () => Promise<T>): Promise<T> {
    const renew = () => this.scripts.renew(keys, token, this.fillLockMs);
    const lock = new FillLock(renew, this.fillLockMs, claimedAt, (reason) => this.lockLost(namespace, reason));
    lock.start();
    let value: T;
    try {
      value = await compute();
    } catch (err) {
      // Not released in time (Redis unreachable): the lock lapses by itself, and the compute's error is what matters.
      await within(this.scripts.release(keys, token), this.fillLockMs).catch(() => undefined);
      throw err;
    } finally {
      lock.stop();
    }
    await this.store(namespace, keys, token, value);
    return value;
  }

  /**
   * Stores a paid answer; never throws (the answer was paid for and goes to the caller
   * anyway). Bounded by the lock's length: a worker's connection queues commands through an
   * outage, and the caller must not wait for Redis to come back (a store landing later is
   * still fenced by the token).
   */
  private async store(namespace: string, keys: CacheKeys, token: string, value: unknown): Promise<void> {
    let stored: StoreReply;
    try {
      const ttlSeconds = Math.max(1, Math.round(this.options.ttlSeconds));
      stored = await within(this.scripts.storeAndRelease(keys, JSON.stringify(value), ttlSeconds, token), this.fillLockMs);
    } catch (err) {
      // The fill lock, if still ours, lapses by itself; until then waiters wait, and a full
      // Redis then refuses their claims (TransientError) rather than letting them pay.
      const reason = OOM_REPLY.test(errorText(err)) ? 'oom' : isRedisUnavailable(err) || err instanceof NoAnswerError ? 'unavailable' : 'error';
      this.counters.storeFailures += 1;
      this.observer.storeFailed(namespace, reason);
      this.log.warn({ namespace, reason, err: errorText(err) }, 'result cache: could not store a paid answer; returning it uncached');
      return;
    }
    if (stored === 0) {
      this.counters.fencedStores += 1;
      this.observer.storeFenced(namespace);
    }
  }

  private lockLost(namespace: string, reason: FillLockLoss): void {
    this.counters.fillLocksLost += 1;
    this.observer.fillLockLost(namespace, reason);
    this.log.warn({ namespace, reason }, 'result cache: lost the fill lock while computing; another worker may pay for the same answer');
  }
}

const OOM_REPLY = /^OOM\b/;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
