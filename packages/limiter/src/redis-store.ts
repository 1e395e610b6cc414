import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LimiterUnavailableError } from '@brandq/errors';
import { defineScripts, limiterKeys } from '@brandq/redis';
import type { AdmissionDecision, AdmissionRequest, LimiterStore, SettleRequest } from './limiter-store.js';
import { priorityCap } from './limiter-store.js';
import type { CooldownRequest, DeferralReason, LimiterStats, RateLimitSnapshot, ResolvedLimits, SettleOutcome } from './types.js';
import { DEFERRAL_REASONS } from './types.js';

const lua = (name: string) => new URL(`../lua/${name}.lua`, import.meta.url);

const SCRIPTS = [
  { name: 'brandqLimiterAcquire', file: lua('acquire'), numberOfKeys: 11 },
  { name: 'brandqLimiterSettle', file: lua('settle'), numberOfKeys: 6 },
  { name: 'brandqLimiterRelease', file: lua('release'), numberOfKeys: 8 },
  { name: 'brandqLimiterRenew', file: lua('renew'), numberOfKeys: 1 },
  { name: 'brandqLimiterCooldown', file: lua('cooldown'), numberOfKeys: 2 },
  { name: 'brandqLimiterSyncHeaders', file: lua('sync-headers'), numberOfKeys: 6 },
  { name: 'brandqLimiterStats', file: lua('stats'), numberOfKeys: 8 },
] as const;

type Arg = string | number;

interface ScriptedRedis extends Redis {
  brandqLimiterAcquire(...args: Arg[]): Promise<[number, number | string, number | string, number?]>;
  brandqLimiterSettle(...args: Arg[]): Promise<[number, number]>;
  brandqLimiterRelease(...args: Arg[]): Promise<[number, number]>;
  brandqLimiterRenew(...args: Arg[]): Promise<number>;
  brandqLimiterCooldown(...args: Arg[]): Promise<number>;
  brandqLimiterSyncHeaders(...args: Arg[]): Promise<[number, number, number]>;
  brandqLimiterStats(...args: Arg[]): Promise<string[]>;
}

export interface RedisLimiterStoreOptions {
  /** A limiter call slower than this counts as Redis being unreachable (default 2000 ms). */
  commandTimeoutMs?: number;
}

/** Replies that mean "this Redis cannot serve right now", not "the script is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|BUSY|OOM)\b/;

/**
 * The limiter state in Redis: every decision is one Lua script on the server clock over
 * the keys of one provider (one hash tag, so it works on Cluster). Failures to reach Redis
 * become `LimiterUnavailableError`; the limiter decides whether to fail closed.
 */
export class RedisLimiterStore implements LimiterStore {
  private readonly redis: ScriptedRedis;
  private readonly timeoutMs: number;

  constructor(redis: Redis, options: RedisLimiterStoreOptions = {}) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as ScriptedRedis;
    this.timeoutMs = options.commandTimeoutMs ?? 2000;
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([run(), timeout]);
    } catch (err) {
      const reply = err instanceof Error && err.name === 'ReplyError';
      if (reply && !UNAVAILABLE_REPLY.test(err.message)) throw err;
      const { host, port } = this.redis.options;
      const reason = err instanceof Error ? err.message : String(err);
      throw new LimiterUnavailableError(
        `limiter ${what}: Redis at ${host ?? '?'}:${port ?? '?'} is unreachable (${reason}); ` +
          'failing closed rather than admitting calls without the shared limits',
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  async acquire(provider: string, limits: ResolvedLimits, request: AdmissionRequest): Promise<AdmissionDecision> {
    const k = limiterKeys(provider);
    const reply = await this.call('acquire', () =>
      this.redis.brandqLimiterAcquire(
        k.bucket, k.requests, k.window, k.windowTokens, k.windowSum, k.leases, k.stagger, k.cooldown, k.stats, k.waitSlots, k.pace,
        request.id,
        limits.rpm,
        limits.burst,
        limits.windowMs,
        limits.safetyMarginMs,
        limits.effectiveTpm,
        request.tokens,
        priorityCap(limits, request.priority),
        limits.leaseMs,
        limits.staggerMs,
        Math.floor(request.waitedMs),
        request.slotMs,
        limits.jitterRatio,
        limits.jitterCapMs,
        request.jitter,
        limits.paceMs,
      ),
    );
    const [status, a, b, c] = reply;
    if (status === 1) return { kind: 'admitted', nowMs: Number(a), leaseUntilMs: Number(b), tokens: Number(c ?? 0) };
    if (status === 0) return { kind: 'wait', waitMs: Number(a), reason: String(b) as DeferralReason, slotMs: Number(c ?? 0) };
    return { kind: 'too-large', effectiveTpm: Number(a) };
  }

  async settle(provider: string, limits: ResolvedLimits, request: SettleRequest): Promise<SettleOutcome> {
    const k = limiterKeys(provider);
    const [held, delta] = await this.call('settle', () =>
      this.redis.brandqLimiterSettle(
        k.window, k.windowTokens, k.windowSum, k.leases, k.stats, k.pace,
        request.id,
        request.usedTokens === undefined ? -1 : Math.max(0, Math.ceil(request.usedTokens)),
        request.holdMs === undefined ? -1 : Math.max(0, Math.round(request.holdMs)),
        limits.effectiveTpm,
        limits.windowMs,
        limits.safetyMarginMs,
        limits.tokenCounting,
        limits.paceMs,
      ),
    );
    return { leaseHeld: held === 1, tokenDelta: delta };
  }

  async release(provider: string, limits: ResolvedLimits, id: string): Promise<SettleOutcome> {
    const k = limiterKeys(provider);
    const [held, refunded] = await this.call('release', () =>
      this.redis.brandqLimiterRelease(
        k.bucket, k.requests, k.window, k.windowTokens, k.windowSum, k.leases, k.stats, k.pace,
        id,
        limits.burst,
        limits.effectiveTpm,
        limits.windowMs,
        limits.paceMs,
      ),
    );
    return { leaseHeld: held === 1, tokenDelta: -refunded };
  }

  async renew(provider: string, limits: ResolvedLimits, id: string): Promise<number> {
    const k = limiterKeys(provider);
    return this.call('renew', () => this.redis.brandqLimiterRenew(k.leases, id, limits.leaseMs));
  }

  async cooldown(provider: string, request: CooldownRequest): Promise<number> {
    const k = limiterKeys(provider);
    const [mode, value] =
      request.retryAfterMs !== undefined ? ['after', Math.max(0, Math.ceil(request.retryAfterMs))] : ['until', Math.ceil(request.untilMs ?? 0)];
    return this.call('cooldown', () => this.redis.brandqLimiterCooldown(k.cooldown, k.stats, mode, value));
  }

  async syncHeaders(provider: string, limits: ResolvedLimits, snapshot: RateLimitSnapshot): Promise<void> {
    const k = limiterKeys(provider);
    const n = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? -1 : Math.max(0, v));
    await this.call('syncFromHeaders', () =>
      this.redis.brandqLimiterSyncHeaders(
        k.bucket, k.window, k.windowTokens, k.windowSum, k.stats, k.requests,
        `sync:${randomUUID()}`,
        limits.rpm,
        limits.burst,
        limits.windowMs,
        limits.tpm,
        n(snapshot.remainingRequests),
        n(snapshot.resetRequestsMs),
        n(snapshot.remainingTokens),
        n(snapshot.resetTokensMs),
        limits.effectiveTpm,
      ),
    );
  }

  async stats(provider: string): Promise<LimiterStats> {
    const k = limiterKeys(provider);
    const flat = await this.call('stats', () =>
      this.redis.brandqLimiterStats(k.requests, k.window, k.windowTokens, k.leases, k.stagger, k.cooldown, k.stats, k.bucket),
    );
    const f = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) f.set(String(flat[i]), Number(flat[i + 1]));
    const c = (name: string) => f.get(name) ?? 0;
    const calls = c('calls');
    const deferrals = Object.fromEntries(DEFERRAL_REASONS.map((r) => [r, c(`deferrals:${r}`)])) as Record<DeferralReason, number>;
    return {
      calls,
      totalWaitMs: c('totalWaitMs'),
      avgWaitMs: calls > 0 ? c('totalWaitMs') / calls : 0,
      deferrals,
      activeLeases: c('activeLeases'),
      tokensInWindow: c('tokensInWindow'),
      requestsInWindow: c('requestsInWindow'),
      nextSlotAtMs: c('nextSlotAtMs'),
      cooldownUntilMs: c('cooldownUntilMs'),
      holdUntilMs: c('holdUntilMs'),
      settled: c('settled'),
      released: c('released'),
      cooldowns: c('cooldowns'),
      leasesReclaimed: c('leasesReclaimed'),
      headerCorrections: c('headerCorrections'),
      tokensReserved: c('tokensReserved'),
      tokensUsed: c('tokensUsed'),
      avgHoldMs: c('holdMsEwma'),
      nowMs: c('nowMs'),
    };
  }
}
