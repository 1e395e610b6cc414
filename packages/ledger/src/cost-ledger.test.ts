import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { BudgetExhaustedError, BudgetInFlightError } from '@brandq/errors';
import { runKeys } from '@brandq/redis';
import { useTestRedis } from '@brandq/testing';
import { BUDGET_EPOCH_FIELD, CostLedger } from './cost-ledger.js';
import { formatCostSummary } from './cost-summary.js';
import { llmCostMicros, tavilyCostMicros, tierPrice } from './pricing.js';

const redis = useTestRedis();

/** What the death of the reservation's holder looks like to Redis: its expiry is in the past. */
async function expireNow(client: Redis, runId: string, reservationId: string): Promise<void> {
  await client.zadd(runKeys(runId).reservations, 0, reservationId);
}

describe('CostLedger', () => {
  it('books real costs and usage per provider in integer micro-dollars', async () => {
    const ledger = new CostLedger(redis.client());
    const r1 = await ledger.reserve('ledger-a', 'tavily', 16_000);
    await ledger.settle(r1, { costMicros: tavilyCostMicros(1, 0.008), credits: 1 });
    const r2 = await ledger.reserve('ledger-a', 'llm', 5_000);
    await ledger.settle(r2, { costMicros: llmCostMicros({ inputPerMillion: 0.15, outputPerMillion: 0.6 }, 1000, 200), inputTokens: 1000, outputTokens: 200 });
    const snap = await ledger.snapshot('ledger-a');
    expect(snap.providers.tavily).toMatchObject({ calls: 1, costMicros: 8000, credits: 1 });
    expect(snap.providers.llm).toMatchObject({ calls: 1, costMicros: 270, inputTokens: 1000, outputTokens: 200 });
    expect(snap.spentMicros).toBe(8270);
    expect(snap.reservedMicros).toBe(0);
  });

  it('counts each recipe step apart, once per booking even when a settle is retried, and lists the steps in the summary', async () => {
    const ledger = new CostLedger(redis.client());
    const search = await ledger.reserve('ledger-steps', 'tavily', 16_000, 'search');
    await ledger.settle(search, { costMicros: 8_000, credits: 1 });
    const extract = await ledger.reserve('ledger-steps', 'llm', 5_000, 'extract');
    await ledger.settle(extract, { costMicros: 270, inputTokens: 1000, outputTokens: 200 });
    // The reply of the first settle was lost: the retry is the same booking, counted once.
    await ledger.settle(extract, { costMicros: 270, inputTokens: 1000, outputTokens: 200 });
    await ledger.settle(await ledger.reserve('ledger-steps', 'llm', 5_000, 'score'), { costMicros: 0, inputTokens: 10, outputTokens: 2 });
    await ledger.bookCacheHit('ledger-steps', 'llm', 300, 'extract');
    await ledger.settle(await ledger.reserve('ledger-steps', 'llm', 5_000), { costMicros: 5, inputTokens: 1, outputTokens: 1 });
    const snap = await ledger.snapshot('ledger-steps');
    expect(snap.steps).toEqual({
      search: { calls: 1, cached: 0, savedMicros: 0, costMicros: 8000, inputTokens: 0, outputTokens: 0, credits: 1 },
      extract: { calls: 1, cached: 1, savedMicros: 300, costMicros: 270, inputTokens: 1000, outputTokens: 200, credits: 0 },
      score: { calls: 1, cached: 0, savedMicros: 0, costMicros: 0, inputTokens: 10, outputTokens: 2, credits: 0 },
    });
    expect(snap.providers.llm.calls).toBe(3);
    const text = formatCostSummary(snap, 'OpenAI', ['search', 'extract', 'score']);
    expect(text).toContain(
      ['  By step:', '    - search: $0.01 (1 calls, 1 credits)', '    - extract: $0.00 (1 calls, 1,000 in / 200 out tokens, 1 cached)', '    - score: $0.00 (1 calls, 10 in / 2 out tokens)'].join('\n'),
    );
  });

  it('shows a cheaper tier per step and what it saved against the standard price of the same tokens', async () => {
    const ledger = new CostLedger(redis.client());
    const standard = { inputPerMillion: 1, outputPerMillion: 4 };
    // 100,000 in and 50,000 out at half of $1 / $4 per million: $0.15 billed, $0.15 saved.
    const batch = tierPrice(standard, 'batch');
    await ledger.settle(await ledger.reserve('ledger-tier', 'llm', 500_000, 'extract'), { costMicros: llmCostMicros(batch, 100_000, 50_000), inputTokens: 100_000, outputTokens: 50_000 });
    await ledger.settle(await ledger.reserve('ledger-tier', 'llm', 500_000, 'score'), { costMicros: llmCostMicros(standard, 10_000, 0), inputTokens: 10_000, outputTokens: 0 });
    const text = formatCostSummary(await ledger.snapshot('ledger-tier'), 'OpenAI', [
      { id: 'extract', tier: 'batch', standardPrice: standard },
      { id: 'score', tier: 'standard', standardPrice: standard },
    ]);
    expect(text).toContain('    - extract: $0.15 (1 calls, 100,000 in / 50,000 out tokens; batch tier, saved $0.15 against standard)');
    expect(text).toContain('    - score: $0.01 (1 calls, 10,000 in / 0 out tokens)\n');
    expect(text).toContain('  Cheaper tiers: saved $0.15 against the standard price');
  });

  it('holds a reservation asked twice under the same id once (a holder that died halfway and asks again)', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-same-id', 1_000);
    const first = await ledger.reserve('ledger-same-id', 'llm', 600, 'extract', 'intent-1:a');
    const again = await ledger.reserve('ledger-same-id', 'llm', 600, 'extract', 'intent-1:a');
    expect(again).toMatchObject({ id: first.id, micros: first.micros });
    expect((await ledger.snapshot('ledger-same-id')).reservedMicros).toBe(600);
    await ledger.settle(again, { costMicros: 100, inputTokens: 10, outputTokens: 10 });
    expect(await ledger.snapshot('ledger-same-id')).toMatchObject({ reservedMicros: 0, spentMicros: 100 });
  });

  it('holds an id that expired into unconfirmed spend once when it is asked again, and books its settle against it', async () => {
    const ledger = new CostLedger(redis.client(), 50);
    await ledger.setBudget('ledger-expired-id', 1_000);
    await ledger.reserve('ledger-expired-id', 'llm', 300, 'extract', 'intent-2:a');
    await new Promise((r) => setTimeout(r, 80));
    // Another reservation lets the expiry run: the first hold turns into unconfirmed spend.
    await ledger.release(await ledger.reserve('ledger-expired-id', 'llm', 1));
    expect((await ledger.snapshot('ledger-expired-id')).unconfirmedMicros).toBe(300);
    const again = await ledger.reserve('ledger-expired-id', 'llm', 300, 'extract', 'intent-2:a');
    await ledger.settle(again, { costMicros: 50, inputTokens: 10, outputTokens: 10 });
    expect(await ledger.snapshot('ledger-expired-id')).toMatchObject({ reservedMicros: 0, unconfirmedMicros: 0, spentMicros: 50 });
  });

  it('refuses a reservation that only calls in flight keep out as retryable, not as an exhausted budget', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-b', 10_000);
    const held = await ledger.reserve('ledger-b', 'llm', 7_000);
    const refused = await ledger.reserve('ledger-b', 'llm', 4_000).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BudgetInFlightError);
    expect(refused).toMatchObject({ kind: 'budget_in_flight', retryable: true, details: { neededMicros: 4000, availableMicros: 3000, inFlightMicros: 7000 } });
    // Settling below the reservation frees the difference for the next call.
    await ledger.settle(held, { costMicros: 5_000 });
    await ledger.settle(await ledger.reserve('ledger-b', 'llm', 4_000), { costMicros: 4_000 });
    // Nothing in flight and spent + the next worst case above the budget: the run is out of budget.
    const exhausted = await ledger.reserve('ledger-b', 'llm', 2_000).catch((e: unknown) => e);
    expect(exhausted).toBeInstanceOf(BudgetExhaustedError);
    expect(exhausted).toMatchObject({ kind: 'budget_exhausted', details: { neededMicros: 2000, availableMicros: 1000, budgetEpoch: 1 } });
  });

  it('counts budget changes in an epoch set together with the budget', async () => {
    const client = redis.client();
    const ledger = new CostLedger(client);
    expect(await ledger.setBudget('ledger-epoch', 1_000)).toBe(1);
    await expect(ledger.reserve('ledger-epoch', 'llm', 2_000)).rejects.toMatchObject({ details: { budgetEpoch: 1 } });
    // A `--resume --budget` after the refusal: the refusal's epoch is stale from here on.
    expect(await ledger.setBudget('ledger-epoch', 5_000)).toBe(2);
    expect(await client.hget(runKeys('ledger-epoch').ledger, BUDGET_EPOCH_FIELD)).toBe('2');
    expect(await ledger.snapshot('ledger-epoch')).toMatchObject({ budgetMicros: 5_000, budgetEpoch: 2 });
    await expect(ledger.reserve('ledger-epoch', 'llm', 2_000)).resolves.toMatchObject({ micros: 2_000 });
  });

  it('never lets concurrent reservations exceed the budget', async () => {
    const clients = [redis.client(), redis.client(), redis.client(), redis.client()];
    const ledgers = clients.map((c) => new CostLedger(c));
    await ledgers[0]!.setBudget('ledger-c', 100_000);
    const attempts = Array.from({ length: 200 }, (_, i) =>
      ledgers[i % ledgers.length]!.reserve('ledger-c', 'llm', 3_000).then(
        async (r) => {
          await ledgers[i % ledgers.length]!.settle(r, { costMicros: 3_000 });
          return true;
        },
        (e: unknown) => {
          expect([BudgetExhaustedError, BudgetInFlightError].some((kind) => e instanceof kind)).toBe(true);
          return false;
        },
      ),
    );
    const granted = (await Promise.all(attempts)).filter(Boolean).length;
    const snap = await ledgers[0]!.snapshot('ledger-c');
    expect(granted).toBe(33);
    expect(snap.spentMicros).toBe(99_000);
    expect(snap.spentMicros).toBeLessThanOrEqual(snap.budgetMicros);
  });

  it('turns the reservation of a worker that died before settling into unconfirmed spend, still counted against the budget', async () => {
    const client = redis.client();
    const ledger = new CostLedger(client);
    await ledger.setBudget('ledger-d', 6_000);
    const forgotten = await ledger.reserve('ledger-d', 'llm', 5_000);
    await expireNow(client, 'ledger-d', forgotten.id);
    await expect(ledger.reserve('ledger-d', 'llm', 2_000)).rejects.toBeInstanceOf(BudgetExhaustedError);
    await expect(ledger.reserve('ledger-d', 'llm', 1_000)).resolves.toMatchObject({ micros: 1000 });
    const snap = await ledger.snapshot('ledger-d');
    expect(snap).toMatchObject({ spentMicros: 0, unconfirmedMicros: 5_000, reservedMicros: 1_000, expiredReservations: 1 });
    expect(snap.providers.llm).toMatchObject({ unconfirmedMicros: 5_000, unconfirmedCalls: 1, costMicros: 0 });
  });

  it('books a call of unknown outcome as unconfirmed, and a late settle turns it into the real cost once', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-g', 10_000);
    const timedOut = await ledger.reserve('ledger-g', 'tavily', 8_000);
    await ledger.bookUnconfirmed(timedOut);
    await ledger.bookUnconfirmed(timedOut);
    expect(await ledger.snapshot('ledger-g')).toMatchObject({ spentMicros: 0, unconfirmedMicros: 8_000, reservedMicros: 0 });
    expect((await ledger.snapshot('ledger-g')).providers.tavily).toMatchObject({ unconfirmedMicros: 8_000, unconfirmedCalls: 1, calls: 0 });
    await expect(ledger.reserve('ledger-g', 'tavily', 3_000)).rejects.toBeInstanceOf(BudgetExhaustedError);

    await ledger.settle(timedOut, { costMicros: 7_000, credits: 1 });
    await ledger.settle(timedOut, { costMicros: 7_000, credits: 1 });
    const snap = await ledger.snapshot('ledger-g');
    expect(snap).toMatchObject({ spentMicros: 7_000, unconfirmedMicros: 0, reservedMicros: 0, overrunMicros: 0 });
    expect(snap.providers.tavily).toMatchObject({ calls: 1, costMicros: 7_000, credits: 1, unconfirmedMicros: 0, unconfirmedCalls: 0 });
    await expect(ledger.reserve('ledger-g', 'tavily', 3_000)).resolves.toMatchObject({ micros: 3_000 });
  });

  it('gives back a reservation that expired while its holder was slow, when the call was never billed', async () => {
    const client = redis.client();
    const ledger = new CostLedger(client);
    const slow = await ledger.reserve('ledger-h', 'llm', 4_000);
    await expireNow(client, 'ledger-h', slow.id);
    await ledger.reserve('ledger-h', 'llm', 0);
    expect(await ledger.snapshot('ledger-h')).toMatchObject({ unconfirmedMicros: 4_000 });
    await ledger.release(slow);
    expect(await ledger.snapshot('ledger-h')).toMatchObject({ unconfirmedMicros: 0, spentMicros: 0 });
    expect((await ledger.snapshot('ledger-h')).providers.llm).toMatchObject({ unconfirmedMicros: 0, unconfirmedCalls: 0 });
  });

  it('books a cost above its reservation in full, reports the overrun once and raises later reservations by the observed ratio', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-o', 10_000);
    const first = await ledger.reserve('ledger-o', 'llm', 1_000);
    expect(await ledger.settle(first, { costMicros: 1_500 })).toEqual({ overrunMicros: 500, firstOverrun: true, observedRatio: 1.5 });

    const raised = await ledger.reserve('ledger-o', 'llm', 1_000);
    expect(raised).toMatchObject({ micros: 1_500, requestedMicros: 1_000 });
    // Billed at twice the configured price: 500 above the raised reservation, a larger ratio.
    expect(await ledger.settle(raised, { costMicros: 2_000 })).toEqual({ overrunMicros: 500, firstOverrun: false, observedRatio: 2 });
    await expect(ledger.reserve('ledger-o', 'llm', 1_000)).resolves.toMatchObject({ micros: 2_000 });
    // Another provider's prices are its own.
    await expect(ledger.reserve('ledger-o', 'tavily', 1_000)).resolves.toMatchObject({ micros: 1_000 });

    const snap = await ledger.snapshot('ledger-o');
    expect(snap).toMatchObject({ spentMicros: 3_500, overrunMicros: 1_000, reservedMicros: 3_000 });
    expect(snap.providers.llm).toMatchObject({ costMicros: 3_500, overrunMicros: 1_000, priceRatio: 2 });
    expect(snap.providers.tavily).toMatchObject({ overrunMicros: 0, priceRatio: 0 });
    // 3,500 spent + 3,000 reserved: a raised 4,000 no longer fits.
    await expect(ledger.reserve('ledger-o', 'llm', 2_000)).rejects.toBeInstanceOf(BudgetInFlightError);
  });

  it('reports a cost billed against a reservation of 0 as an unbounded ratio', async () => {
    const ledger = new CostLedger(redis.client());
    const unpriced = await ledger.reserve('ledger-u', 'llm', 0);
    expect(await ledger.settle(unpriced, { costMicros: 300 })).toEqual({ overrunMicros: 300, firstOverrun: true, observedRatio: Infinity });
    const snap = await ledger.snapshot('ledger-u');
    expect(snap).toMatchObject({ spentMicros: 300, overrunMicros: 300 });
    expect(snap.providers.llm.priceRatio).toBe(0);
    expect(formatCostSummary(snap, 'OpenRouter')).toContain('  Overrun: $0.00 above reservations (OpenRouter billed calls priced at 0)');
  });

  it('holds later calls reserved at 0 at the largest bill seen for one (a model priced 0 that the provider bills)', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-zero-billed', 10_000);
    const first = await ledger.reserve('ledger-zero-billed', 'llm', 0);
    await ledger.settle(first, { costMicros: 3_000 });
    // Without the floor every later call held 0 and three in flight at 9,000 spent ended at 18,000 (180%).
    await expect(ledger.reserve('ledger-zero-billed', 'llm', 0)).resolves.toMatchObject({ micros: 3_000, requestedMicros: 0 });
    await expect(ledger.reserve('ledger-zero-billed', 'llm', 0)).resolves.toMatchObject({ micros: 3_000 });
    await expect(ledger.reserve('ledger-zero-billed', 'llm', 0)).rejects.toBeInstanceOf(BudgetInFlightError);
    // Other providers and runs keep their own figures.
    await expect(ledger.reserve('ledger-zero-billed', 'tavily', 0)).resolves.toMatchObject({ micros: 0 });
  });

  it('keeps three workers calling a model priced 0 that the provider bills within the budget', async () => {
    const ledgers = [redis.client(), redis.client(), redis.client()].map((c) => new CostLedger(c));
    await ledgers[0]!.setBudget('ledger-zero-fleet', 10_000);
    const worker = async (ledger: CostLedger) => {
      for (;;) {
        const held = await ledger.reserve('ledger-zero-fleet', 'llm', 0).catch((e: unknown) => e);
        if (held instanceof BudgetExhaustedError) return;
        if (held instanceof BudgetInFlightError) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        if (held instanceof Error) throw held;
        await new Promise((resolve) => setTimeout(resolve, 5));
        await ledger.settle(held as Awaited<ReturnType<CostLedger['reserve']>>, { costMicros: 3_000 });
      }
    };
    await Promise.all(ledgers.map(worker));
    const snap = await ledgers[0]!.snapshot('ledger-zero-fleet');
    // Before: every call held 0 and overran, and the run stopped only once spent was past the
    // budget (18,000 seen). Now only the calls admitted before the first bill hold 0 (one per
    // worker at most); every later one holds 3,000, so the overshoot is those calls at most.
    expect(snap.overrunMicros).toBeLessThanOrEqual(3 * 3_000);
    expect(snap.spentMicros).toBeLessThanOrEqual(10_000 + 2 * 3_000);
    expect(snap.providers.llm.calls).toBeGreaterThanOrEqual(3);
    expect(snap.reservedMicros).toBe(0);
  });

  it('refuses for good, not as in flight, when spent alone leaves no room: calls in flight can only add to it', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-no-room', 10_000);
    await ledger.settle(await ledger.reserve('ledger-no-room', 'llm', 8_000), { costMicros: 8_000 });
    const stuck = await ledger.reserve('ledger-no-room', 'tavily', 1_000);
    // An LLM call of 3,000 cannot fit whatever the Tavily call in flight settles at.
    await expect(ledger.reserve('ledger-no-room', 'llm', 3_000)).rejects.toBeInstanceOf(BudgetExhaustedError);
    // One that fits once the Tavily call settles below its worst case still waits for it.
    await expect(ledger.reserve('ledger-no-room', 'llm', 1_500)).rejects.toBeInstanceOf(BudgetInFlightError);
    await ledger.release(stuck);
  });

  it('books a paid call whose usage counters are not whole numbers (fractional or negative credits, infinite tokens)', async () => {
    const ledger = new CostLedger(redis.client());
    const held = await ledger.reserve('ledger-odd-usage', 'tavily', 16_000);
    // Before: the settle script refused anything but non-negative integers, so the paid
    // answer was lost and its reservation left to expire into unconfirmed spend.
    await ledger.settle(held, { costMicros: 12_000, credits: 1.5 });
    await ledger.book('ledger-odd-usage', 'tavily', { costMicros: 0, credits: -2 });
    await ledger.book('ledger-odd-usage', 'llm', { costMicros: 300, inputTokens: Number.POSITIVE_INFINITY, outputTokens: Number.NaN });
    const snap = await ledger.snapshot('ledger-odd-usage');
    expect(snap).toMatchObject({ spentMicros: 12_300, reservedMicros: 0, unconfirmedMicros: 0 });
    expect(snap.providers.tavily).toMatchObject({ calls: 2, costMicros: 12_000, credits: 2 });
    expect(snap.providers.llm).toMatchObject({ calls: 1, costMicros: 300, inputTokens: 0, outputTokens: 0 });
  });

  it('counts a settle retried after a lost reply once (the booking id is remembered)', async () => {
    const ledger = new CostLedger(redis.client());
    const held = await ledger.reserve('ledger-f', 'llm', 5_000);
    await ledger.settle(held, { costMicros: 1_234, inputTokens: 10, outputTokens: 2 });
    await ledger.settle(held, { costMicros: 1_234, inputTokens: 10, outputTokens: 2 });
    await ledger.book('ledger-f', 'tavily', { costMicros: 8_000, credits: 1 });
    await ledger.book('ledger-f', 'tavily', { costMicros: 8_000, credits: 1 });
    const snap = await ledger.snapshot('ledger-f');
    expect(snap.providers.llm).toMatchObject({ calls: 1, costMicros: 1_234 });
    // Bookings without a reservation get an id each: two calls are two calls.
    expect(snap.providers.tavily).toMatchObject({ calls: 2, costMicros: 16_000 });
    expect(snap).toMatchObject({ spentMicros: 17_234, reservedMicros: 0 });
  });

  it('reserves, settles, releases and expires zero amounts without wedging the run (a free model)', async () => {
    const client = redis.client();
    const ledger = new CostLedger(client);
    await ledger.setBudget('ledger-zero', 10_000);
    await ledger.settle(await ledger.reserve('ledger-zero', 'llm', 0), { costMicros: 0 });
    await ledger.release(await ledger.reserve('ledger-zero', 'llm', 0));
    const forgotten = await ledger.reserve('ledger-zero', 'llm', 0);
    await expireNow(client, 'ledger-zero', forgotten.id);
    await expect(ledger.reserve('ledger-zero', 'llm', 1_000)).resolves.toMatchObject({ micros: 1_000 });
    const timedOut = await ledger.reserve('ledger-zero', 'llm', 0);
    await ledger.bookUnconfirmed(timedOut);
    await ledger.settle(timedOut, { costMicros: 0 });
    expect(await ledger.snapshot('ledger-zero')).toMatchObject({ spentMicros: 0, unconfirmedMicros: 0, reservedMicros: 1_000, expiredReservations: 1 });
    expect((await ledger.snapshot('ledger-zero')).providers.llm).toMatchObject({ calls: 2, costMicros: 0 });
  });

  it('books a settle of 0 that failed once when it is retried (nothing is written before the checks pass)', async () => {
    const ledger = new CostLedger(redis.client());
    const held = await ledger.reserve('ledger-zero-retry', 'llm', 0);
    await ledger.settle(held, { costMicros: 0, inputTokens: 3 }).catch(() => undefined);
    await ledger.settle(held, { costMicros: 0, inputTokens: 3 });
    expect((await ledger.snapshot('ledger-zero-retry')).providers.llm).toMatchObject({ calls: 1, inputTokens: 3 });
  });

  it('refuses amounts that are not numbers before anything reaches Redis', async () => {
    const ledger = new CostLedger(redis.client());
    await expect(ledger.reserve('ledger-nan', 'llm', Number.NaN)).rejects.toBeInstanceOf(RangeError);
    const held = await ledger.reserve('ledger-nan', 'llm', 10);
    await expect(ledger.settle(held, { costMicros: Infinity })).rejects.toBeInstanceOf(RangeError);
    await ledger.settle(held, { costMicros: 10 });
    expect(await ledger.snapshot('ledger-nan')).toMatchObject({ spentMicros: 10, reservedMicros: 0 });
  });

  it('prints the original tool\'s cost summary', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-e', 50_000_000);
    await ledger.book('ledger-e', 'tavily', { costMicros: 14_250_000, credits: 1781 });
    await ledger.book('ledger-e', 'llm', { costMicros: 9_830_000, inputTokens: 8_750_000, outputTokens: 1_250_000 });
    const text = formatCostSummary(await ledger.snapshot('ledger-e'), 'OpenRouter');
    expect(text).toBe(
      [
        '[COST SUMMARY]',
        '  Tavily: $14.25 (1 calls)',
        '  OpenRouter: $9.83 (1 calls)',
        '    - Input tokens: 8,750,000',
        '    - Output tokens: 1,250,000',
        '  Total: $24.08',
        '  Budget: $24.08 / $50.00 (48.2%)',
        '  Remaining: $25.92',
      ].join('\n'),
    );
  });

  it('shows unconfirmed spend and overruns in the cost summary, apart from the confirmed total', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-s', 1_000_000);
    await ledger.bookUnconfirmed(await ledger.reserve('ledger-s', 'tavily', 16_000));
    await ledger.settle(await ledger.reserve('ledger-s', 'llm', 100_000), { costMicros: 150_000, inputTokens: 1000, outputTokens: 100 });
    const text = formatCostSummary(await ledger.snapshot('ledger-s'), 'OpenAI');
    expect(text).toBe(
      [
        '[COST SUMMARY]',
        '  Tavily: $0.00 (0 calls)',
        '  OpenAI: $0.15 (1 calls)',
        '    - Input tokens: 1,000',
        '    - Output tokens: 100',
        '  Total: $0.15',
        '  Unconfirmed: $0.02 (1 calls that may have been billed, not in the total)',
        '  Overrun: $0.05 above reservations (OpenAI billed up to 1.50x the configured price)',
        '  Budget: $0.17 / $1.00 (16.6%) incl. unconfirmed',
        '  Remaining: $0.83',
      ].join('\n'),
    );
  });
});
