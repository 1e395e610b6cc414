import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AdmissionDecision, AdmissionRequest, LimiterStore } from './limiter-store.js';
import { resolveLimits } from './limits.js';
import type { Priority, ProviderLimits, ResolvedLimits } from './types.js';

let seq = 0;

/** A fresh provider name per test, so tests never share state. */
function provider(): string {
  seq += 1;
  return `spec-${process.pid}-${seq}`;
}

function request(tokens = 0, priority: Priority = 'default'): AdmissionRequest {
  return { id: randomUUID(), tokens, priority, waitedMs: 0, slotMs: 0, jitter: 0 };
}

function admittedId(decision: AdmissionDecision, req: AdmissionRequest): string {
  expect(decision).toMatchObject({ kind: 'admitted' });
  return req.id;
}

function waitOf(decision: AdmissionDecision): Extract<AdmissionDecision, { kind: 'wait' }> {
  if (decision.kind !== 'wait') throw new Error(`expected a wait, got ${JSON.stringify(decision)}`);
  return decision;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The limiter rules as behaviour specs, run against every store. Assertions are on what
 * the store answers (admitted or the wait it computed), with bounds loose enough for a
 * loaded machine: a wait may only be shorter than its ideal by the time that passed.
 */
export function describeStoreBehaviour(name: string, makeStore: () => LimiterStore): void {
  describe(`${name}: limiter rules`, () => {
    const setup = (limits: ProviderLimits) => {
      const store = makeStore();
      const p = provider();
      const resolved: ResolvedLimits = resolveLimits(p, { safetyMarginMs: 0, ...limits });
      const acquire = (tokens = 0, priority: Priority = 'default') => {
        const req = request(tokens, priority);
        return store.acquire(p, resolved, req).then((decision) => ({ req, decision }));
      };
      return { store, p, limits: resolved, acquire };
    };

    it('request bucket: admits the burst at once, then paces at rpm per window', async () => {
      // 60 per 6 s = one request every 100 ms.
      const { acquire } = setup({ rpm: 60, burst: 3, windowMs: 6000 });
      for (let i = 0; i < 3; i++) expect((await acquire()).decision.kind).toBe('admitted');
      const w = waitOf((await acquire()).decision);
      expect(w.reason).toBe('requests');
      expect(w.waitMs).toBeGreaterThan(0);
      expect(w.waitMs).toBeLessThanOrEqual(100);
      await pause(w.waitMs + 5);
      expect((await acquire()).decision.kind).toBe('admitted');
    });

    it('request log: no sliding window ever holds more than rpm, whatever the burst refilled', async () => {
      // The bucket alone would admit 4 now and 1 more after 250 ms; the log holds the 5th for the window.
      const { acquire } = setup({ rpm: 4, burst: 4, windowMs: 1000 });
      for (let i = 0; i < 4; i++) expect((await acquire()).decision.kind).toBe('admitted');
      await pause(300);
      const w = waitOf((await acquire()).decision);
      expect(w.reason).toBe('requests');
      expect(w.waitMs).toBeGreaterThan(300);
      expect(w.waitMs).toBeLessThanOrEqual(700);
    });

    it('wake-up slots: waiters for the same moment get slots of their own, one launch spacing apart', async () => {
      // 60 per 6 s: one launch every 100 ms.
      const { acquire } = setup({ rpm: 60, burst: 1, windowMs: 6000 });
      expect((await acquire()).decision.kind).toBe('admitted');
      const waits = [];
      for (let i = 0; i < 5; i++) waits.push(waitOf((await acquire()).decision));
      const slots = waits.map((w) => w.slotMs);
      for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(100);
      // Each wait ends at its own slot (the answers came at slightly different moments).
      expect(waits[4]!.waitMs).toBeGreaterThan(400 - 100);
    });

    it('wake-up slots: a waiter beaten to its slot keeps its place; a newcomer goes behind every slot handed out', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 60, burst: 1, windowMs: 6000 });
      expect((await acquire()).decision.kind).toBe('admitted');
      const early = request();
      const first = waitOf(await store.acquire(p, limits, early));
      const second = waitOf((await acquire()).decision);
      await pause(first.waitMs + 5);
      // Someone else takes the capacity of the first slot (admission stays greedy).
      expect((await acquire()).decision.kind).toBe('admitted');
      const again = waitOf(await store.acquire(p, limits, { ...early, slotMs: first.slotMs }));
      expect(again.waitMs).toBeLessThanOrEqual(100);
      expect(again.slotMs).toBeLessThan(second.slotMs + 100);
      const newcomer = waitOf((await acquire()).decision);
      expect(newcomer.slotMs).toBeGreaterThanOrEqual(second.slotMs + 100);
    });

    it('wake-up slots: the gap to the previous slot is spread by the caller\'s jitter draw, within +/- jitterRatio and the cap', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 60, burst: 1, windowMs: 6000, jitterRatio: 0.2, jitterCapMs: 3000 });
      expect((await acquire()).decision.kind).toBe('admitted');
      const slotOf = async (jitter: number) => (waitOf(await store.acquire(p, limits, { ...request(), jitter }))).slotMs;
      const first = await slotOf(0);
      const late = await slotOf(1);
      const early = await slotOf(-1);
      expect(late - first).toBe(120);
      expect(early - late).toBe(80);

      const capped = setup({ rpm: 1, burst: 1, windowMs: 20_000, jitterRatio: 0.5, jitterCapMs: 1000 });
      expect((await capped.acquire()).decision.kind).toBe('admitted');
      const slotOfCapped = async (jitter: number) =>
        (waitOf(await capped.store.acquire(capped.p, capped.limits, { ...request(), jitter }))).slotMs;
      const a = await slotOfCapped(0);
      expect((await slotOfCapped(1)) - a).toBe(20_000 + 1000);
    });

    it('wake-up slots: a concurrency wait has no known end and gets no slot (it is polled)', async () => {
      const { acquire } = setup({ rpm: 1000, burst: 100, maxConcurrency: 1, leaseMs: 10_000 });
      expect((await acquire()).decision.kind).toBe('admitted');
      expect((await acquire()).decision).toMatchObject({ kind: 'wait', reason: 'concurrency', slotMs: 0 });
    });

    it('token window (usage counting): headroom lowers the limit, settle refunds and charges the difference', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, tpm: 1000, tpmHeadroom: 0.2, windowMs: 3000, tokenCounting: 'usage' });
      expect(limits.effectiveTpm).toBe(800);
      expect((await acquire(801)).decision).toEqual({ kind: 'too-large', effectiveTpm: 800 });

      const first = await acquire(500);
      admittedId(first.decision, first.req);
      const blocked = waitOf((await acquire(400)).decision);
      expect(blocked.reason).toBe('tokens');
      expect(blocked.waitMs).toBeGreaterThan(2000);
      expect(blocked.waitMs).toBeLessThanOrEqual(3000);

      // Refund: the call used 200 of its 500, so 400 more now fit (200 + 400 <= 800).
      expect(await store.settle(p, limits, { id: first.req.id, usedTokens: 200, holdMs: 10 })).toMatchObject({ tokenDelta: -300 });
      const second = await acquire(400);
      admittedId(second.decision, second.req);
      expect((await store.stats(p)).tokensInWindow).toBe(600);

      // Charge: it used 700, more than reserved; the window now holds 900 > 800.
      expect(await store.settle(p, limits, { id: second.req.id, usedTokens: 700, holdMs: 10 })).toMatchObject({ tokenDelta: 300 });
      const stats = await store.stats(p);
      expect(stats.tokensInWindow).toBe(900);
      expect(stats.tokensReserved).toBe(900);
      expect(stats.tokensUsed).toBe(900);
      expect(waitOf((await acquire(1)).decision).reason).toBe('tokens');
    });

    it('token window: usage of a call that reserved nothing still counts', async () => {
      // The minute window alone: pacing would hold the second call for the first one's usage.
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, tpm: 1000, windowMs: 3000, paceMs: 0 });
      const a = await acquire(0);
      await store.settle(p, limits, { id: admittedId(a.decision, a.req), usedTokens: 950, holdMs: 5 });
      expect(waitOf((await acquire(100)).decision).reason).toBe('tokens');
      // Without an estimate a call still needs room; once usage fills the window it waits too.
      const b = await acquire(0);
      await store.settle(p, limits, { id: admittedId(b.decision, b.req), usedTokens: 60, holdMs: 5 });
      expect(waitOf((await acquire(0)).decision).reason).toBe('tokens');
    });

    it('token window (admission counting, the default): a sent call keeps its reservation, failed or not; larger usage raises it; only release refunds', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, tpm: 1000, windowMs: 60_000, paceMs: 0 });
      expect(limits.tokenCounting).toBe('admission');
      const failed = await acquire(500);
      // The pipeline settles a failed call with usage 0: the provider counted it anyway.
      expect(await store.settle(p, limits, { id: admittedId(failed.decision, failed.req), usedTokens: 0, holdMs: 5 })).toMatchObject({ tokenDelta: 0 });
      const answered = await acquire(300);
      expect(await store.settle(p, limits, { id: admittedId(answered.decision, answered.req), usedTokens: 120, holdMs: 5 })).toMatchObject({ tokenDelta: 0 });
      expect((await store.stats(p)).tokensInWindow).toBe(800);
      expect(waitOf((await acquire(201)).decision).reason).toBe('tokens');

      const underestimated = await acquire(100);
      expect(await store.settle(p, limits, { id: admittedId(underestimated.decision, underestimated.req), usedTokens: 150, holdMs: 5 })).toMatchObject({ tokenDelta: 50 });
      expect((await store.stats(p)).tokensInWindow).toBe(950);

      const neverSent = await acquire(50);
      expect(await store.release(p, limits, admittedId(neverSent.decision, neverSent.req))).toMatchObject({ tokenDelta: -50 });
      expect((await store.stats(p)).tokensInWindow).toBe(950);
    });

    it('pacing requests: the bucket holds one slice\'s share of rpm, not the configured burst', async () => {
      // 60 per 6 s with slices of 500 ms: 5 per slice, though the burst allows 10.
      const { limits, acquire } = setup({ rpm: 60, burst: 10, windowMs: 6000, paceMs: 500 });
      expect(limits.burst).toBe(5);
      for (let i = 0; i < 5; i++) expect((await acquire()).decision.kind).toBe('admitted');
      expect(waitOf((await acquire()).decision).reason).toBe('requests');
    });

    it('pacing tokens: a slice of tolerance, then one call per its share of the rate; a call larger than a slice goes once the schedule caught up', async () => {
      // 6000 tokens per 6 s = 1 token per ms; slices of 200 ms.
      const { acquire } = setup({ rpm: 1000, burst: 100, tpm: 6000, windowMs: 6000, paceMs: 200 });
      expect((await acquire(150)).decision.kind).toBe('admitted');
      // The schedule is 150 ms ahead, within the slice: admitted, and now 550 ms ahead.
      expect((await acquire(400)).decision.kind).toBe('admitted');
      const w = waitOf((await acquire(10)).decision);
      expect(w.reason).toBe('tokens');
      expect(w.waitMs).toBeGreaterThan(100);
      expect(w.waitMs).toBeLessThanOrEqual(350);
      await pause(w.waitMs + 5);
      expect((await acquire(2000)).decision.kind).toBe('admitted');
      const after = waitOf((await acquire(1)).decision);
      expect(after.reason).toBe('tokens');
      expect(after.waitMs).toBeGreaterThan(1500);
      expect(after.waitMs).toBeLessThanOrEqual(1800 + 350);
    });

    it('pacing tokens: only the latest paced admission gives its share back (release, or a usage refund); a sent call keeps it in admission counting', async () => {
      // 3000 tokens per 6 s = 0.5 token per ms; slices of 200 ms.
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, tpm: 3000, windowMs: 6000, paceMs: 200 });
      const latest = await acquire(1000);
      await store.release(p, limits, admittedId(latest.decision, latest.req));
      const sent = await acquire(1000);
      await store.settle(p, limits, { id: admittedId(sent.decision, sent.req), usedTokens: 0, holdMs: 5 });
      // Still 2000 ms ahead: the released call gave its share back, the sent one did not.
      const w = waitOf((await acquire(1)).decision);
      expect(w.waitMs).toBeGreaterThan(1600);
      expect(w.waitMs).toBeLessThanOrEqual(1800);

      // Slices of 1 s here, so the first call's share (800 ms) is large enough to see.
      const other = setup({ rpm: 1000, burst: 100, tpm: 3000, windowMs: 6000, paceMs: 1000 });
      const first = await other.acquire(400);
      expect((await other.acquire(1000)).decision.kind).toBe('admitted');
      // Scheduled on top of by the second call: the first one's share stays (2800 ms ahead,
      // so a 1800 ms wait; 1000 ms had it been given back).
      await other.store.release(other.p, other.limits, admittedId(first.decision, first.req));
      expect(waitOf((await other.acquire(1)).decision).waitMs).toBeGreaterThan(1500);

      const usage = setup({ rpm: 1000, burst: 100, tpm: 3000, windowMs: 6000, paceMs: 200, tokenCounting: 'usage' });
      const small = await usage.acquire(1000);
      await usage.store.settle(usage.p, usage.limits, { id: admittedId(small.decision, small.req), usedTokens: 100, holdMs: 5 });
      // 200 ms ahead after the refund of 900 tokens: within the slice.
      expect((await usage.acquire(1)).decision.kind).toBe('admitted');
    });

    it('pacing keeps throughput at the limits: a greedy caller over 3 short windows gets ~ the limit, never more per window', async () => {
      // 40 requests and 4000 tokens per second, slices of 100 ms; calls of 100 tokens.
      const { store, p, limits } = setup({ rpm: 40, burst: 40, tpm: 4000, windowMs: 1000, paceMs: 100 });
      const admittedAt: number[] = [];
      const started = performance.now();
      while (performance.now() - started < 3000) {
        const decision = await store.acquire(p, limits, request(100));
        if (decision.kind === 'admitted') admittedAt.push(decision.nowMs);
        else await pause(Math.max(1, waitOf(decision).waitMs));
      }
      const inWindow = (from: number, length: number) => admittedAt.filter((t) => t >= from && t < from + length).length;
      for (const t of admittedAt) {
        expect(inWindow(t, 1000)).toBeLessThanOrEqual(40);
        // One slice's bucket plus what it refills within a slice, plus one.
        expect(inWindow(t, 100)).toBeLessThanOrEqual(4 + 4 + 1);
      }
      // 3 windows of 40, less what a loaded machine loses to timer lateness.
      expect(admittedAt.length).toBeGreaterThanOrEqual(100);
      expect(admittedAt.length).toBeLessThanOrEqual(3 * 40 + 4);
    });

    it('release refunds tokens, the request and the lease of a call never made', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 1, burst: 1, tpm: 1000, maxConcurrency: 1, windowMs: 60_000 });
      const a = await acquire(700);
      admittedId(a.decision, a.req);
      expect(waitOf((await acquire(100)).decision).reason).toBe('requests');
      expect(await store.release(p, limits, a.req.id)).toMatchObject({ leaseHeld: true, tokenDelta: -700 });
      const stats = await store.stats(p);
      expect(stats).toMatchObject({ tokensInWindow: 0, requestsInWindow: 0, activeLeases: 0, released: 1 });
      expect((await acquire(1000)).decision.kind).toBe('admitted');
    });

    it('release gives the bucket token back only while it is the latest admission: the bucket may have been full since', async () => {
      // 60 per 6 s: one request every 100 ms, a bucket of one.
      const { store, p, limits, acquire } = setup({ rpm: 60, burst: 1, windowMs: 6000 });
      const neverSent = await acquire();
      admittedId(neverSent.decision, neverSent.req);
      await pause(120);
      expect((await acquire()).decision.kind).toBe('admitted');
      // The provider never saw the first call, but its bucket was full again before the second
      // one took it: a third now would be one more than it allows (found by the model test).
      await store.release(p, limits, neverSent.req.id);
      expect(waitOf((await acquire()).decision).reason).toBe('requests');
    });

    it('concurrency: a fleet-wide cap, and a lower one for the finalize class', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, maxConcurrency: 3, finalizeConcurrency: 2, leaseMs: 10_000 });
      const a = await acquire();
      const b = await acquire();
      admittedId(a.decision, a.req);
      admittedId(b.decision, b.req);
      const f = waitOf((await acquire(0, 'finalize')).decision);
      expect(f.reason).toBe('concurrency');
      expect(f.waitMs).toBeGreaterThan(0);
      expect(f.waitMs).toBeLessThanOrEqual(1000);
      const c = await acquire();
      admittedId(c.decision, c.req);
      expect(waitOf((await acquire()).decision).reason).toBe('concurrency');
      expect((await store.stats(p)).activeLeases).toBe(3);

      await store.settle(p, limits, { id: a.req.id, usedTokens: undefined, holdMs: 40 });
      expect(waitOf((await acquire(0, 'finalize')).decision).reason).toBe('concurrency');
      await store.settle(p, limits, { id: b.req.id, usedTokens: undefined, holdMs: 40 });
      expect((await acquire(0, 'finalize')).decision.kind).toBe('admitted');
    });

    it('lease: a holder that stops renewing loses its slot after leaseMs; renewing keeps it', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, maxConcurrency: 1, leaseMs: 300 });
      const dead = await acquire();
      admittedId(dead.decision, dead.req);
      const w = waitOf((await acquire()).decision);
      expect(w.reason).toBe('concurrency');
      expect(w.waitMs).toBeLessThanOrEqual(300);
      await pause(350);
      const next = await acquire();
      admittedId(next.decision, next.req);
      expect((await store.stats(p)).leasesReclaimed).toBe(1);
      expect(await store.renew(p, limits, dead.req.id)).toBe(0);

      // A live holder renewing every 100 ms keeps the slot well past leaseMs.
      for (let i = 0; i < 5; i++) {
        await pause(100);
        expect(await store.renew(p, limits, next.req.id)).toBeGreaterThan(0);
      }
      expect(waitOf((await acquire()).decision).reason).toBe('concurrency');
      expect(await store.settle(p, limits, { id: next.req.id, usedTokens: undefined, holdMs: 500 })).toMatchObject({ leaseHeld: true });
    });

    it('stagger: launches keep the minimum spacing', async () => {
      const { store, p, acquire } = setup({ rpm: 1000, burst: 100, staggerMs: 300 });
      expect((await acquire()).decision.kind).toBe('admitted');
      const w = waitOf((await acquire()).decision);
      expect(w.reason).toBe('stagger');
      expect(w.waitMs).toBeGreaterThan(150);
      expect(w.waitMs).toBeLessThanOrEqual(300);
      const stats = await store.stats(p);
      expect(stats.nextSlotAtMs).toBeGreaterThan(stats.nowMs);
      await pause(w.waitMs + 5);
      expect((await acquire()).decision.kind).toBe('admitted');
    });

    it('cooldown: holds the provider and is never shortened', async () => {
      const { store, p, acquire } = setup({ rpm: 1000, burst: 100 });
      const until = await store.cooldown(p, { retryAfterMs: 600 });
      expect(await store.cooldown(p, { retryAfterMs: 50 })).toBe(until);
      expect(await store.cooldown(p, { untilMs: 1 })).toBe(until);
      const w = waitOf((await acquire()).decision);
      expect(w.reason).toBe('cooldown');
      expect(w.waitMs).toBeGreaterThan(300);
      expect(w.waitMs).toBeLessThanOrEqual(600);
      expect((await store.stats(p)).cooldownUntilMs).toBe(until);
    });

    it('header sync: zero remaining requests holds until the reset; more remaining never loosens', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 600, burst: 2, windowMs: 60_000 });
      await store.syncHeaders(p, limits, { remainingRequests: 500, resetRequestsMs: 10 });
      expect((await acquire()).decision.kind).toBe('admitted');
      expect((await acquire()).decision.kind).toBe('admitted');
      expect(waitOf((await acquire()).decision).waitMs).toBeLessThanOrEqual(100);

      await store.syncHeaders(p, limits, { remainingRequests: 0, resetRequestsMs: 500 });
      const w = waitOf((await acquire()).decision);
      expect(w.reason).toBe('requests');
      expect(w.waitMs).toBeGreaterThan(300);
      expect(w.waitMs).toBeLessThanOrEqual(500);
    });

    it('header sync: a provider at its limit that counts no more than our request log causes no hold (no stall at the limit)', async () => {
      // Running at the limit, every answer reports 0 remaining and a reset about a window away.
      const { store, p, limits, acquire } = setup({ rpm: 2, burst: 2, windowMs: 400 });
      expect((await acquire()).decision.kind).toBe('admitted');
      expect((await acquire()).decision.kind).toBe('admitted');
      await store.syncHeaders(p, limits, { remainingRequests: 0, resetRequestsMs: 60_000 });
      expect((await store.stats(p)).holdUntilMs).toBe(0);
      // The log spaces the next launch to when the oldest entry leaves the window, not the reset.
      const w = waitOf((await acquire()).decision);
      expect(w.reason).toBe('requests');
      expect(w.waitMs).toBeLessThanOrEqual(400);
    });

    it('header sync: fewer remaining tokens than we count adds a synthetic entry until the reset', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, tpm: 1000, windowMs: 60_000 });
      await store.syncHeaders(p, limits, { remainingTokens: 5000, resetTokensMs: 1000 });
      expect((await store.stats(p)).tokensInWindow).toBe(0);

      await store.syncHeaders(p, limits, { remainingTokens: 300, resetTokensMs: 500 });
      expect((await store.stats(p)).tokensInWindow).toBe(700);
      // Repeating the same report adds nothing: the difference is already held.
      await store.syncHeaders(p, limits, { remainingTokens: 300, resetTokensMs: 500 });
      expect((await store.stats(p)).tokensInWindow).toBe(700);

      const w = waitOf((await acquire(400)).decision);
      expect(w.reason).toBe('tokens');
      expect(w.waitMs).toBeLessThanOrEqual(500);
      expect((await acquire(300)).decision.kind).toBe('admitted');
    });

    it('header sync: a configured limit above the provider\'s holds us to its remaining room, not to a stall', async () => {
      const { store, p, limits, acquire } = setup({ rpm: 1000, burst: 100, tpm: 100_000, tpmHeadroom: 0.15, windowMs: 60_000 });
      await store.syncHeaders(p, limits, { remainingTokens: 10_000, resetTokensMs: 60_000 });
      // 85,000 effective, of which the provider's 10,000 less 15% headroom is left.
      expect((await store.stats(p)).tokensInWindow).toBe(85_000 - 8_500);
      expect((await acquire(8_000)).decision.kind).toBe('admitted');
      expect((await acquire(1_000)).decision.kind).toBe('wait');
    });

    it('nothing is taken when the answer is a wait; stats count admissions, waits and deferrals', async () => {
      const { store, p, limits } = setup({ rpm: 1000, burst: 100, tpm: 1000, maxConcurrency: 5, staggerMs: 10_000 });
      const first = request(100);
      expect((await store.acquire(p, limits, { ...first, waitedMs: 42 })).kind).toBe('admitted');
      for (let i = 0; i < 3; i++) expect((await store.acquire(p, limits, request(100))).kind).toBe('wait');
      const stats = await store.stats(p);
      expect(stats).toMatchObject({ calls: 1, totalWaitMs: 42, avgWaitMs: 42, tokensInWindow: 100, requestsInWindow: 1, activeLeases: 1 });
      expect(stats.deferrals).toEqual({ cooldown: 0, concurrency: 0, requests: 0, tokens: 0, stagger: 3 });
    });
  });
}
