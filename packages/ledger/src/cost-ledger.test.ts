import { describe, expect, it } from 'vitest';
import { BudgetExhaustedError } from '@brandq/errors';
import { useTestRedis } from '@brandq/testing';
import { CostLedger } from './cost-ledger.js';
import { formatCostSummary } from './cost-summary.js';
import { llmCostMicros, tavilyCostMicros } from './pricing.js';

const redis = useTestRedis();

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

  it('refuses a reservation the budget cannot cover, with the figures', async () => {
    const ledger = new CostLedger(redis.client());
    await ledger.setBudget('ledger-b', 10_000);
    const held = await ledger.reserve('ledger-b', 'llm', 7_000);
    const refused = await ledger.reserve('ledger-b', 'llm', 4_000).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BudgetExhaustedError);
    expect((refused as BudgetExhaustedError).details).toMatchObject({ neededMicros: 4000, availableMicros: 3000 });
    // Settling below the reservation frees the difference for the next call.
    await ledger.settle(held, { costMicros: 5_000 });
    await expect(ledger.reserve('ledger-b', 'llm', 4_000)).resolves.toMatchObject({ micros: 4000 });
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
          expect(e).toBeInstanceOf(BudgetExhaustedError);
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

  it('reclaims the reservation of a worker that died before settling', async () => {
    const ledger = new CostLedger(redis.client(), 200);
    await ledger.setBudget('ledger-d', 5_000);
    await ledger.reserve('ledger-d', 'llm', 5_000);
    await expect(ledger.reserve('ledger-d', 'llm', 1_000)).rejects.toBeInstanceOf(BudgetExhaustedError);
    await new Promise((r) => setTimeout(r, 400));
    await expect(ledger.reserve('ledger-d', 'llm', 1_000)).resolves.toMatchObject({ micros: 1000 });
    expect((await ledger.snapshot('ledger-d')).expiredReservations).toBe(1);
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
});
