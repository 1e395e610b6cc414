import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ConfigError, LimiterUnavailableError } from '@brandq/errors';
import { LimiterRequestTooLargeError, LimiterWaitTimeoutError, errorProvider } from './errors.js';
import { jitteredDelay } from './jitter.js';
import type { LimiterStore } from './limiter-store.js';
import { resolveLimits } from './limits.js';
import { LimiterPermit, type PermitHost } from './permit.js';
import { parseRateLimitHeaders, type HeaderSource } from './rate-limit-headers.js';
import { RedisLimiterStore } from './redis-store.js';
import { sleep } from './sleep.js';
import type { AcquireOptions, CooldownRequest, DeferralReason, LimiterStats, Permit, ProviderLimits, RateLimitSnapshot, ResolvedLimits, SettleOutcome } from './types.js';

export interface LimiterLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface LimiterOptions {
  /** The shared store. Give either `redis` or `store` (e.g. a `MemoryLimiterStore` for one process). */
  redis?: Redis;
  store?: LimiterStore;
  providers: Record<string, ProviderLimits>;
  logger?: LimiterLogger;
  /** A Redis call slower than this counts as Redis unreachable (default 2000 ms). */
  commandTimeoutMs?: number;
  /** Told of every wait this process takes, for per-process metrics. */
  onDeferral?: (provider: string, reason: DeferralReason, waitMs: number) => void;
}

const processWarning: LimiterLogger = {
  warn: (obj, msg) => process.emitWarning(`${msg} ${JSON.stringify(obj)}`, 'BrandqLimiterWarning'),
};

interface Route {
  store: LimiterStore;
  limits: ResolvedLimits;
}

/**
 * Admits calls to rate-limited providers for a whole fleet of processes. Each admission
 * is one store call deciding every rule at once; a deferral is a sleep until the wake-up
 * slot the store handed out (or, for a concurrency wait, a jittered poll), never a tight loop.
 */
export class Limiter {
  private readonly primary: LimiterStore;
  private readonly limits = new Map<string, ResolvedLimits>();
  private readonly logger: LimiterLogger;
  private readonly onDeferral: LimiterOptions['onDeferral'];
  private readonly routes = new Map<LimiterPermit, Route>();
  private closed = false;
  /** Permits talk back through this, keeping the settle plumbing out of the public API. */
  private readonly host: PermitHost = {
    settle: (permit, usedTokens, holdMs) => this.settlePermit(permit, usedTokens, holdMs),
    release: (permit) => this.releasePermit(permit),
    renew: (permit) => this.renewPermit(permit),
    forget: (permit) => void this.routes.delete(permit),
  };

  constructor(options: LimiterOptions) {
    if (options.store) this.primary = options.store;
    else if (options.redis) this.primary = new RedisLimiterStore(options.redis, { commandTimeoutMs: options.commandTimeoutMs });
    else throw new ConfigError('createLimiter: give `redis` (shared limits) or `store`');
    this.logger = options.logger ?? processWarning;
    this.onDeferral = options.onDeferral;
    for (const [provider, limits] of Object.entries(options.providers)) this.limits.set(provider, resolveLimits(provider, limits));
  }

  /** The resolved limits of a provider (defaults filled in). */
  limitsOf(provider: string): ResolvedLimits {
    const limits = this.limits.get(provider);
    if (!limits) throw new ConfigError(`limiter: no limits configured for provider "${provider}"`, { provider: errorProvider(provider) });
    return limits;
  }

  /** Waits until every rule of the provider admits the call, then returns its permit. */
  async acquire(provider: string, options: AcquireOptions = {}): Promise<Permit> {
    if (this.closed) throw new Error('limiter is closed');
    const limits = this.limitsOf(provider);
    const tokens = limits.tpm > 0 ? Math.max(0, Math.ceil(options.tokens ?? limits.fallbackTokens)) : 0;
    if (limits.effectiveTpm > 0 && tokens > limits.effectiveTpm) throw new LimiterRequestTooLargeError(provider, tokens, limits.effectiveTpm);
    const id = randomUUID();
    const priority = options.priority ?? 'default';
    const started = performance.now();
    let slotMs = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      const waitedMs = performance.now() - started;
      const { route, decision } = await this.decide(provider, (r) => r.store.acquire(provider, r.limits, { id, tokens, priority, waitedMs, slotMs, jitter: 2 * Math.random() - 1 }));
      if (decision.kind === 'admitted') {
        const permit = new LimiterPermit(this.host, {
          id,
          provider,
          tokens: decision.tokens,
          waitedMs,
          admittedAtMs: decision.nowMs,
          leaseMs: decision.leaseUntilMs > 0 ? route.limits.leaseMs : 0,
        });
        this.routes.set(permit, route);
        return permit;
      }
      if (decision.kind === 'too-large') throw new LimiterRequestTooLargeError(provider, tokens, decision.effectiveTpm);
      const elapsed = performance.now() - started;
      if (options.maxWaitMs !== undefined && elapsed + decision.waitMs > options.maxWaitMs) {
        throw new LimiterWaitTimeoutError(provider, elapsed, decision.waitMs, decision.reason, options.maxWaitMs);
      }
      this.onDeferral?.(provider, decision.reason, decision.waitMs);
      // A slot is this caller's own, already jittered apart from the other waiters' slots:
      // sleep until it exactly. A polled (concurrency) wait is jittered here instead.
      slotMs = decision.slotMs;
      let delay = slotMs > 0 ? decision.waitMs : jitteredDelay(decision.waitMs, limits.jitterRatio, limits.jitterCapMs);
      if (options.maxWaitMs !== undefined) delay = Math.max(1, Math.min(delay, options.maxWaitMs - elapsed));
      await sleep(delay, options.signal);
    }
  }

  /**
   * Holds the provider for the whole fleet after a 429, until `retryAfterMs` from now or
   * until `untilMs`. Never shortens a later cooldown. Returns the end now in force.
   */
  async cooldown(provider: string, request: CooldownRequest): Promise<number> {
    this.limitsOf(provider);
    return this.bestEffort('cooldown', provider, 0, (r) => r.store.cooldown(provider, request));
  }

  /** Tightens the shared state from the provider's rate-limit headers; never loosens it. */
  async syncFromHeaders(provider: string, headers: HeaderSource): Promise<RateLimitSnapshot> {
    this.limitsOf(provider);
    const snapshot = parseRateLimitHeaders(headers);
    if (Object.keys(snapshot).length === 0) return snapshot;
    await this.bestEffort('syncFromHeaders', provider, undefined, (r) => r.store.syncHeaders(provider, r.limits, snapshot));
    return snapshot;
  }

  /** Statistics of a provider as the whole fleet sees them. */
  async stats(provider: string): Promise<LimiterStats> {
    this.limitsOf(provider);
    const { decision } = await this.decide(provider, (r) => r.store.stats(provider));
    return decision;
  }

  /** Stops renewing leases of permits still held (they then expire); does not close `redis`. */
  async close(): Promise<void> {
    this.closed = true;
    for (const permit of this.routes.keys()) permit.stopRenewing();
    this.routes.clear();
  }

  private async settlePermit(permit: LimiterPermit, usedTokens: number | undefined, holdMs: number): Promise<SettleOutcome> {
    const route = this.routes.get(permit);
    if (!route) return { leaseHeld: false, tokenDelta: 0 };
    const outcome = await this.permitCall('settle', permit, { leaseHeld: true, tokenDelta: 0 }, () =>
      route.store.settle(permit.provider, route.limits, { id: permit.id, usedTokens, holdMs }),
    );
    if (!outcome.leaseHeld && route.limits.maxConcurrency > 0) {
      this.logger.warn(
        { provider: permit.provider, permit: permit.id, holdMs: Math.round(holdMs) },
        'limiter: lease had expired before settle (was the process stalled?); raise leaseMs if calls outlive it',
      );
    }
    return outcome;
  }

  private async releasePermit(permit: LimiterPermit): Promise<SettleOutcome> {
    const route = this.routes.get(permit);
    if (!route) return { leaseHeld: false, tokenDelta: 0 };
    return this.permitCall('release', permit, { leaseHeld: false, tokenDelta: 0 }, () => route.store.release(permit.provider, route.limits, permit.id));
  }

  private async renewPermit(permit: LimiterPermit): Promise<boolean> {
    const route = this.routes.get(permit);
    if (!route) return false;
    const until = await this.permitCall('renew', permit, -1, () => route.store.renew(permit.provider, route.limits, permit.id));
    if (until === 0) {
      this.logger.warn({ provider: permit.provider, permit: permit.id }, 'limiter: lease already reclaimed; raise leaseMs if calls outlive it');
      permit.stopRenewing();
    }
    return until > 0;
  }

  /** Settling must not fail a call that already happened: an outage here only logs. */
  private async permitCall<T>(what: string, permit: LimiterPermit, fallback: T, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof LimiterUnavailableError)) throw err;
      this.logger.warn({ provider: permit.provider, permit: permit.id, err: err.message }, `limiter: ${what} failed; the lease expires on its own`);
      return fallback;
    }
  }

  private async bestEffort<T>(what: string, provider: string, fallback: T, run: (route: Route) => Promise<T>): Promise<T> {
    try {
      return (await this.decide(provider, run)).decision;
    } catch (err) {
      if (!(err instanceof LimiterUnavailableError)) throw err;
      this.logger.warn({ provider, err: err.message }, `limiter: ${what} not recorded, Redis unreachable`);
      return fallback;
    }
  }

  /**
   * Runs a store call on the shared store. With Redis down it fails closed
   * (`LimiterUnavailableError`): the fleet's queue and budget live there too, so no call
   * could be admitted and paid for safely without it.
   */
  private async decide<T>(provider: string, run: (route: Route) => Promise<T>): Promise<{ route: Route; decision: T }> {
    const route: Route = { store: this.primary, limits: this.limitsOf(provider) };
    return { route, decision: await run(route) };
  }
}

/** Creates a limiter; see `Limiter`. */
export function createLimiter(options: LimiterOptions): Limiter {
  return new Limiter(options);
}
