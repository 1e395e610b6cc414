import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Redis } from 'ioredis';
import { useTestRedis } from '@brandq/testing';
import type { LimiterStore } from './limiter-store.js';
import { resolveLimits } from './limits.js';
import { MemoryLimiterStore } from './memory-store.js';
import { RedisLimiterStore } from './redis-store.js';
import { LimiterModel, type ModelPermit } from './test-support/limiter-model.js';
import type { LimiterStats, Priority, RateLimitSnapshot, ResolvedLimits } from './types.js';

/**
 * Model-based property test of the limiter stores: random sequences of acquire, settle
 * (usage below and above the reservation, unknown, 0), release, renew, kill, cooldown,
 * header sync and the passing of time, run against a store and the reference model in
 * test-support/limiter-model.ts. After every step the store must agree with the model:
 * every admission is one a provider enforcing the limits (per window and per slice, tokens
 * as it counts them) would accept, outside any cooldown and under the concurrency cap; the
 * live leases are exactly those of permits not ended whose lease has not run out (a killed
 * holder's disappears after leaseMs); a header sync never loosens anything.
 */

interface Real {
  store: LimiterStore;
  provider: string;
  limits: ResolvedLimits;
  /** Lets store time pass: a fake clock for the memory store, a real sleep for Redis. */
  advance(ms: number): Promise<void>;
}

type LimiterCommand = fc.AsyncCommand<LimiterModel, Real>;

function fail(what: string, details: unknown): never {
  throw new Error(`${what}: ${JSON.stringify(details)}`);
}

/** After every step: the store's live leases are exactly the model's. */
async function checkLeases(model: LimiterModel, real: Real): Promise<LimiterStats> {
  const stats = await real.store.stats(real.provider);
  const expected = model.liveLeases(stats.nowMs);
  if (stats.activeLeases !== expected) fail('live leases differ from the model', { store: stats.activeLeases, model: expected, nowMs: stats.nowMs, permits: model.permits });
  return stats;
}

const pick = <T>(items: T[], index: number): T | undefined => (items.length === 0 ? undefined : items[index % items.length]);

/** Asks for a permit; told to wait, sleeps until its slot (at most `maxSleepMs`) and asks again, up to `attempts` times, as the limiter does. */
class Acquire implements LimiterCommand {
  constructor(readonly tokens: number, readonly priority: Priority, readonly attempts: number, readonly maxSleepMs: number) {}
  check = () => true;
  async run(model: LimiterModel, real: Real): Promise<void> {
    const id = randomUUID();
    const { effectiveTpm } = real.limits;
    let slotMs = 0;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const decision = await real.store.acquire(real.provider, real.limits, { id, tokens: this.tokens, priority: this.priority, waitedMs: 0, slotMs, jitter: 0 });
      const tooLarge = effectiveTpm > 0 && this.tokens > effectiveTpm;
      if (tooLarge !== (decision.kind === 'too-large')) fail('too-large answer differs from the model', { tokens: this.tokens, effectiveTpm, decision });
      if (decision.kind === 'too-large') break;
      if (decision.kind === 'admitted') {
        const reserved = effectiveTpm > 0 ? this.tokens : 0;
        if (decision.tokens !== reserved) fail('reserved tokens differ from the request', { decision, reserved });
        const violations = model.admissionViolations(decision.nowMs, reserved, this.priority);
        if (violations.length > 0) fail('admission breaks a limit', { violations, decision });
        model.admit({ id, at: decision.nowMs, reserved, priority: this.priority, leaseUntil: decision.leaseUntilMs });
        break;
      }
      if (!(decision.waitMs > 0)) fail('a wait of no time', decision);
      slotMs = decision.slotMs;
      await checkLeases(model, real);
      if (attempt < this.attempts) await real.advance(Math.min(decision.waitMs, this.maxSleepMs));
    }
    await checkLeases(model, real);
  }
  toString = () => `acquire(${this.tokens}, ${this.priority}, ${this.attempts} attempts)`;
}

class Settle implements LimiterCommand {
  /** usedShare: the usage as a share of the reservation (undefined = usage unknown). */
  constructor(readonly which: number, readonly usedShare: number | undefined) {}
  check = (model: Readonly<LimiterModel>) => model.held().length > 0;
  async run(model: LimiterModel, real: Real): Promise<void> {
    const permit = pick(model.held(), this.which) as ModelPermit;
    // A call that reserved nothing may still report usage.
    const used = this.usedShare === undefined ? undefined : Math.round(Math.max(permit.reserved, 10) * this.usedShare);
    await real.store.settle(real.provider, real.limits, { id: permit.id, usedTokens: used, holdMs: 5 });
    model.settle(permit, used);
    await checkLeases(model, real);
  }
  toString = () => `settle(#${this.which}, used x${this.usedShare})`;
}

class Release implements LimiterCommand {
  constructor(readonly which: number) {}
  check = (model: Readonly<LimiterModel>) => model.held().length > 0;
  async run(model: LimiterModel, real: Real): Promise<void> {
    const permit = pick(model.held(), this.which) as ModelPermit;
    await real.store.release(real.provider, real.limits, permit.id);
    model.release(permit);
    await checkLeases(model, real);
  }
  toString = () => `release(#${this.which})`;
}

class Renew implements LimiterCommand {
  constructor(readonly which: number) {}
  check = (model: Readonly<LimiterModel>) => model.held().length > 0;
  async run(model: LimiterModel, real: Real): Promise<void> {
    const permit = pick(model.held(), this.which) as ModelPermit;
    const until = await real.store.renew(real.provider, real.limits, permit.id);
    if (permit.leaseUntil === 0 && until !== 0) fail('a lease that was gone came back', { permit, until });
    model.renew(permit, until);
    await checkLeases(model, real);
  }
  toString = () => `renew(#${this.which})`;
}

/** The holder's process dies: it never renews, settles nor releases again. */
class Kill implements LimiterCommand {
  constructor(readonly which: number) {}
  check = (model: Readonly<LimiterModel>) => model.held().length > 0;
  async run(model: LimiterModel, real: Real): Promise<void> {
    model.kill(pick(model.held(), this.which) as ModelPermit);
    await checkLeases(model, real);
  }
  toString = () => `kill(#${this.which})`;
}

class Cooldown implements LimiterCommand {
  constructor(readonly retryAfterMs: number) {}
  check = () => true;
  async run(model: LimiterModel, real: Real): Promise<void> {
    const until = await real.store.cooldown(real.provider, { retryAfterMs: this.retryAfterMs });
    if (until !== 0 && until < model.cooldownUntil) fail('a cooldown was shortened', { until, before: model.cooldownUntil });
    model.cooldownUntil = Math.max(model.cooldownUntil, until);
    await checkLeases(model, real);
  }
  toString = () => `cooldown(${this.retryAfterMs} ms)`;
}

class SyncHeaders implements LimiterCommand {
  constructor(readonly snapshot: RateLimitSnapshot, readonly exactClock: boolean) {}
  check = () => true;
  async run(model: LimiterModel, real: Real): Promise<void> {
    const before = await real.store.stats(real.provider);
    await real.store.syncHeaders(real.provider, real.limits, this.snapshot);
    const after = await checkLeases(model, real);
    const never = (what: string, loosened: boolean) => loosened && fail(`header sync loosened ${what}`, { snapshot: this.snapshot, before, after });
    never('the request hold', after.holdUntilMs < before.holdUntilMs);
    // A cooldown's key expires with it, so on Redis time one that ran out between the two
    // reads reads back as 0: only a cooldown still in force at the second read must be unchanged.
    const cooldownLive = this.exactClock || before.cooldownUntilMs > after.nowMs;
    never('the cooldown', cooldownLive && after.cooldownUntilMs !== before.cooldownUntilMs);
    // With Redis time moving between the two reads, entries may expire in between.
    if (this.exactClock) {
      never('the token window', after.tokensInWindow < before.tokensInWindow);
      never('the request log', after.requestsInWindow !== before.requestsInWindow);
      // And a provider reporting less room than we count tightens us to its room (less our headroom share).
      const { tpm, effectiveTpm } = real.limits;
      const remaining = this.snapshot.remainingTokens;
      if (tpm > 0 && remaining !== undefined) {
        const providerRoom = Math.floor((remaining * effectiveTpm) / tpm);
        if (effectiveTpm - after.tokensInWindow > Math.min(providerRoom, effectiveTpm - before.tokensInWindow)) {
          fail('header sync left more room than the provider reported', { snapshot: this.snapshot, providerRoom, before, after });
        }
      }
    }
  }
  toString = () => `syncHeaders(${JSON.stringify(this.snapshot)})`;
}

class Advance implements LimiterCommand {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(model: LimiterModel, real: Real): Promise<void> {
    await real.advance(this.ms);
    await checkLeases(model, real);
  }
  toString = () => `advance(${this.ms} ms)`;
}

/** Limits of one provider; `windowMs` short so that a few sequences see windows and slices roll over. */
const limitsArb = (windowMs: { min: number; max: number }) =>
  fc
    .record({
      rpm: fc.integer({ min: 2, max: 30 }),
      burst: fc.integer({ min: 1, max: 10 }),
      tpm: fc.option(fc.integer({ min: 300, max: 5000 }), { nil: undefined, freq: 5 }),
      tpmHeadroom: fc.constantFrom(0, 0.2),
      maxConcurrency: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined, freq: 5 }),
      windowMs: fc.integer(windowMs),
      paceMs: fc.constantFrom(0, 100, 250, 500),
      tokenCounting: fc.constantFrom('admission' as const, 'usage' as const),
      safetyMarginMs: fc.constantFrom(0, 50),
      staggerMs: fc.constantFrom(0, 0, 40),
    })
    .map((l) => ({ ...l, finalizeConcurrency: l.maxConcurrency === undefined ? undefined : Math.max(1, l.maxConcurrency - 1), leaseMs: 300 }));

function commandsArb(maxCommands: number, maxAdvanceMs: number, exactClock: boolean) {
  const which = fc.nat(20);
  const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
  const snapshot = fc.record(
    {
      // Often nothing left: the answer that holds the fleet.
      remainingRequests: optional(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 35 }))),
      resetRequestsMs: optional(fc.integer({ min: 1, max: 1500 })),
      remainingTokens: optional(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5500 }))),
      resetTokensMs: optional(fc.integer({ min: 1, max: 1500 })),
    },
    { requiredKeys: [] },
  );
  const acquire = fc
    .tuple(fc.integer({ min: 0, max: 1200 }), fc.constantFrom<Priority>('default', 'default', 'finalize'), fc.integer({ min: 1, max: 4 }))
    .map(([tokens, priority, attempts]) => new Acquire(tokens, priority, attempts, maxAdvanceMs));
  const advance = fc.integer({ min: 1, max: maxAdvanceMs }).map((ms) => new Advance(ms));
  return fc.commands(
    [
      acquire,
      acquire,
      acquire,
      acquire,
      advance,
      advance,
      fc.tuple(which, fc.constantFrom(undefined, 0, 0.5, 1, 1.5, 3)).map(([w, share]) => new Settle(w, share)),
      which.map((w) => new Release(w)),
      which.map((w) => new Renew(w)),
      which.map((w) => new Kill(w)),
      fc.integer({ min: 0, max: 800 }).map((ms) => new Cooldown(ms)),
      snapshot.map((s) => new SyncHeaders(s, exactClock)),
    ],
    { maxCommands, size: 'max' },
  );
}

interface RunSize {
  numRuns: number;
  maxCommands: number;
  windowMs: { min: number; max: number };
  maxAdvanceMs: number;
  /** The store's clock stands still between two reads (the fake clock), so reads compare exactly. */
  exactClock: boolean;
  /** Stops searching (and shrinking) after this long, still reporting a failure found with its seed. */
  timeLimitMs: number;
}

async function checkAgainstModel(makeReal: (provider: string, limits: ResolvedLimits) => Real, runs: RunSize) {
  await fc.assert(
    fc.asyncProperty(limitsArb(runs.windowMs), commandsArb(runs.maxCommands, runs.maxAdvanceMs, runs.exactClock), async (raw, cmds) => {
      const provider = `model-${randomUUID().slice(0, 8)}`;
      const limits = resolveLimits(provider, raw);
      const real = makeReal(provider, limits);
      await fc.asyncModelRun(() => ({ model: new LimiterModel(limits), real }), cmds);
    }),
    { numRuns: runs.numRuns, verbose: fc.VerbosityLevel.Verbose, interruptAfterTimeLimit: runs.timeLimitMs, markInterruptAsFailure: false },
  );
}

const redis = useTestRedis();
let client: Redis | undefined;

describe('limiter stores against the reference model', () => {
  it('memory store on a fake clock: 4000 sequences of up to 80 steps', async () => {
    await checkAgainstModel(
      (provider, limits) => {
        let now = 1_000_000;
        return {
          store: new MemoryLimiterStore({ now: () => now }),
          provider,
          limits,
          advance: async (ms) => void (now += ms),
        };
      },
      { numRuns: 4000, maxCommands: 80, windowMs: { min: 1000, max: 2000 }, maxAdvanceMs: 700, exactClock: true, timeLimitMs: 20_000 },
    );
  }, 60_000);

  it('redis store on Redis time: 25 sequences of up to 30 steps', async () => {
    client ??= redis.client();
    const store = new RedisLimiterStore(client);
    await checkAgainstModel(
      (provider, limits) => ({ store, provider, limits, advance: (ms) => new Promise((r) => setTimeout(r, ms)) }),
      // Real time passes here: shorter windows (leases stay 300 ms) keep a run within a few seconds.
      { numRuns: 25, maxCommands: 30, windowMs: { min: 400, max: 800 }, maxAdvanceMs: 250, exactClock: false, timeLimitMs: 40_000 },
    );
  }, 120_000);
});
