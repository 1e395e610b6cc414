import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BudgetExhaustedError, BudgetInFlightError } from '@brandq/errors';
import { defineScripts, retryWhileUnavailable, runKeys } from '@brandq/redis';

const SCRIPTS = [
  { name: 'brandqReserveBudget', file: new URL('../lua/reserve-budget.lua', import.meta.url), numberOfKeys: 5 },
  { name: 'brandqSettleCost', file: new URL('../lua/settle-cost.lua', import.meta.url), numberOfKeys: 6 },
  { name: 'brandqBookUnconfirmed', file: new URL('../lua/book-unconfirmed.lua', import.meta.url), numberOfKeys: 5 },
  { name: 'brandqReleaseReservation', file: new URL('../lua/release-reservation.lua', import.meta.url), numberOfKeys: 5 },
] as const;

/** The reservation keys every script but the settle takes, in this order. */
type HoldKeys = [ledger: string, reservations: string, amounts: string, providers: string, unconfirmed: string];

interface ScriptedRedis extends Redis {
  brandqReserveBudget(...args: [...HoldKeys, id: string, provider: string, micros: number, ttlMs: number]): Promise<[number, number, number, number, number]>;
  brandqSettleCost(
    ...args: [...HoldKeys, settled: string, id: string, provider: string, costMicros: number, input: number, output: number, credits: number, booking: string, requestedMicros: number, step: string]
  ): Promise<[number, number, number, number]>;
  brandqBookUnconfirmed(...args: [...HoldKeys, id: string]): Promise<number>;
  brandqReleaseReservation(...args: [...HoldKeys, id: string]): Promise<number>;
}

/**
 * The ledger hash field counting budget changes: a refusal reports the epoch it saw, so a
 * late refusal never undoes a budget raised after it (packages/runs compares it in Lua).
 */
export const BUDGET_EPOCH_FIELD = 'budget_epoch';

/** Price ratios are kept in the ledger as integer parts per million. */
const PPM = 1_000_000;

export type PaidProvider = 'tavily' | 'llm' | 'sheets';

export interface Reservation {
  id: string;
  runId: string;
  provider: PaidProvider;
  /** What is held against the budget: the requested worst case raised by the observed price ratio. */
  micros: number;
  /** The worst case the caller asked for (configured prices); the observed price ratio is measured against it. */
  requestedMicros: number;
  /** The recipe step the call serves: its cost is also counted per step. */
  step?: string;
}

export interface CallUsage {
  costMicros: number;
  inputTokens?: number;
  outputTokens?: number;
  credits?: number;
}

export interface SettleResult {
  /** What the cost exceeded the reservation by (booked in full all the same); 0 when it fit. */
  overrunMicros: number;
  /** The first overrun of this run and provider: warn once that the configured price is too low. */
  firstOverrun: boolean;
  /**
   * Cost / requested worst case; Infinity for a cost billed against a request of 0 (no ratio
   * can raise a reservation of 0, so none is remembered); 0 when nothing was held, or for a
   * retry of a settle already booked.
   */
  observedRatio: number;
}

export interface ProviderTotals {
  calls: number;
  /** Answers served from the cache: no call, no cost. */
  cached: number;
  /** What the cached answers would have cost. */
  savedMicros: number;
  /** Settled real costs only: what the provider bills. */
  costMicros: number;
  inputTokens: number;
  outputTokens: number;
  credits: number;
  /** Worst cases of calls that may have been billed (outcome unknown, or the holder died). */
  unconfirmedMicros: number;
  unconfirmedCalls: number;
  /** Costs booked above their reservation. */
  overrunMicros: number;
  /** The largest cost / requested worst case billed so far when above 1 (else 0): later reservations are raised by it. */
  priceRatio: number;
}

/** What one recipe step cost a run: settled calls and cache hits, counted when booked. */
export interface StepTotals {
  calls: number;
  cached: number;
  savedMicros: number;
  costMicros: number;
  inputTokens: number;
  outputTokens: number;
  credits: number;
}

export interface LedgerSnapshot {
  budgetMicros: number;
  /** Changes of the budget so far; a refusal reports the epoch it saw. */
  budgetEpoch: number;
  /** Settled real costs only: the sum of the providers' bills. */
  spentMicros: number;
  /** Worst cases of calls that may have been billed; counted against the budget, apart from `spentMicros`. */
  unconfirmedMicros: number;
  /** Costs booked above their reservation (part of `spentMicros`). */
  overrunMicros: number;
  reservedMicros: number;
  expiredReservations: number;
  providers: Record<PaidProvider, ProviderTotals>;
  /** Per recipe step, by step id (calls booked with a step). */
  steps: Record<string, StepTotals>;
}

/** Called before a booking is retried because Redis cannot serve it (down, failing over, full). */
export type BookingRetryListener = (error: Error, waitMs: number) => void;

/**
 * Money per run, in Redis, in integer micro-dollars so concurrent increments never drift.
 * Every paid call reserves its worst case first and settles to the real cost after, so the
 * run's budget holds across the whole fleet, not just one process: spent + unconfirmed +
 * reserved never exceeds the budget, except by costs that exceeded their reservation.
 */
export class CostLedger {
  private readonly redis: ScriptedRedis;

  /**
   * @param bookRetryMs how long a booking of money already spent keeps retrying while Redis
   *   cannot serve it (a restart, a failover, out of memory) before it gives up and throws.
   * @param onBookingRetry told before each such retry (a log line, a metric).
   */
  constructor(
    redis: Redis,
    private readonly reservationTtlMs = 10 * 60_000,
    private readonly bookRetryMs = 120_000,
    private readonly onBookingRetry?: BookingRetryListener,
  ) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as ScriptedRedis;
  }

  /** Sets the budget (0 = unlimited) and returns the new budget epoch, in one step. */
  async setBudget(runId: string, budgetMicros: number): Promise<number> {
    const key = runKeys(runId).ledger;
    const budget = Math.max(0, Math.round(finiteMicros(budgetMicros, 'budget')));
    const replies = await this.redis.multi().hset(key, 'budget_micros', budget).hincrby(key, BUDGET_EPOCH_FIELD, 1).exec();
    for (const [error] of replies ?? []) if (error) throw error;
    return Number(replies?.[1]?.[1]);
  }

  /**
   * Reserves the worst case `micros`, raised by the price ratio observed for this provider.
   * Throws `BudgetInFlightError` when only reservations in flight keep it from fitting (wait
   * and retry), `BudgetExhaustedError` when nothing is in flight and it still does not fit.
   */
  async reserve(runId: string, provider: PaidProvider, micros: number, step?: string, id: string = randomUUID()): Promise<Reservation> {
    // A worst case rounds up, never down.
    const requested = Math.max(0, Math.ceil(finiteMicros(micros, 'reservation')));
    const [outcome, held, available, inFlight, epoch] = await this.redis.brandqReserveBudget(...this.holdKeys(runId), id, provider, requested, this.reservationTtlMs);
    if (outcome === 2) {
      throw new BudgetInFlightError(`budget of run ${runId} cannot cover the next ${provider} call while ${inFlight} µ$ are in flight`, {
        provider,
        details: { neededMicros: held, availableMicros: Math.max(0, available), inFlightMicros: inFlight },
      });
    }
    if (outcome !== 1) {
      throw new BudgetExhaustedError(`budget of run ${runId} cannot cover the next ${provider} call`, {
        provider,
        details: { neededMicros: held, availableMicros: Math.max(0, available), budgetEpoch: epoch },
      });
    }
    return { id, runId, provider, micros: held, requestedMicros: requested, ...(step ? { step } : {}) };
  }

  /**
   * Books the real cost of a reserved call, live, expired or unconfirmed (a late settle turns
   * its unconfirmed worst case into the real cost). Retried like every booking; a cost above
   * the reservation is booked in full and reported.
   */
  async settle(reservation: Reservation, usage: CallUsage): Promise<SettleResult> {
    return this.bookCall(reservation.runId, reservation.provider, usage, reservation.id, reservation.requestedMicros, reservation.step);
  }

  /**
   * Books a call that had no reservation (cannot be refused: the money is already spent).
   * Money spent must reach the ledger even if Redis is away at that moment: the booking is
   * retried with backoff for `bookRetryMs`, and carries an id so a retry whose first try
   * did land (the reply was lost) is not counted twice.
   */
  async book(runId: string, provider: PaidProvider, usage: CallUsage): Promise<void> {
    await this.bookCall(runId, provider, usage, '', 0);
  }

  /**
   * The call may have been billed but no answer says so (a timeout or a reset after the
   * request left): its reservation becomes unconfirmed spend, still counted against the
   * budget, until a late `settle` books the real cost.
   */
  async bookUnconfirmed(reservation: Reservation): Promise<void> {
    await this.persist(() => this.redis.brandqBookUnconfirmed(...this.holdKeys(reservation.runId), reservation.id));
  }

  /** Gives the reservation back: the call was never sent, or refused unbilled. */
  async release(reservation: Reservation): Promise<void> {
    await this.persist(() => this.redis.brandqReleaseReservation(...this.holdKeys(reservation.runId), reservation.id));
  }

  /** A cache hit: nothing spent, the avoided cost recorded as saved. */
  async bookCacheHit(runId: string, provider: PaidProvider, savedMicros: number, step?: string): Promise<void> {
    const key = runKeys(runId).ledger;
    const saved = Math.round(savedMicros);
    const booking = this.redis.multi().hincrby(key, `${provider}:cached`, 1).hincrby(key, `${provider}:saved_micros`, saved);
    if (step) booking.hincrby(key, `${STEP_PREFIX}${step}:cached`, 1).hincrby(key, `${STEP_PREFIX}${step}:saved_micros`, saved);
    await booking.exec();
  }

  async snapshot(runId: string): Promise<LedgerSnapshot> {
    const raw = await this.redis.hgetall(runKeys(runId).ledger);
    const n = (field: string) => Number(raw[field] ?? 0);
    const totals = (p: PaidProvider): ProviderTotals => ({
      calls: n(`${p}:calls`),
      cached: n(`${p}:cached`),
      savedMicros: n(`${p}:saved_micros`),
      costMicros: n(`${p}:cost_micros`),
      inputTokens: n(`${p}:input_tokens`),
      outputTokens: n(`${p}:output_tokens`),
      credits: n(`${p}:credits`),
      unconfirmedMicros: n(`${p}:unconfirmed_micros`),
      unconfirmedCalls: n(`${p}:unconfirmed_calls`),
      overrunMicros: n(`${p}:overrun_micros`),
      priceRatio: n(`${p}:price_ratio_ppm`) / PPM,
    });
    return {
      budgetMicros: n('budget_micros'),
      budgetEpoch: n(BUDGET_EPOCH_FIELD),
      spentMicros: n('spent_micros'),
      unconfirmedMicros: n('unconfirmed_micros'),
      overrunMicros: n('overrun_micros'),
      reservedMicros: n('reserved_micros'),
      expiredReservations: n('expired_reservations'),
      providers: { tavily: totals('tavily'), llm: totals('llm'), sheets: totals('sheets') },
      steps: stepTotalsOf(raw),
    };
  }

  private holdKeys(runId: string): HoldKeys {
    const keys = runKeys(runId);
    return [keys.ledger, keys.reservations, keys.reservationAmounts, keys.reservationProviders, keys.unconfirmedReservations];
  }

  private async bookCall(runId: string, provider: PaidProvider, usage: CallUsage, reservationId: string, requestedMicros: number, step = ''): Promise<SettleResult> {
    const booking = reservationId || randomUUID();
    const cost = Math.max(0, Math.round(finiteMicros(usage.costMicros, 'cost')));
    const [, overrun, first, ratioPpm] = await this.persist(() =>
      this.redis.brandqSettleCost(
        ...this.holdKeys(runId), runKeys(runId).settledBookings,
        reservationId, provider, cost,
        usageCount(usage.inputTokens), usageCount(usage.outputTokens), usageCount(usage.credits), booking, requestedMicros, step,
      ),
    );
    return { overrunMicros: overrun, firstOverrun: first === 1, observedRatio: ratioPpm < 0 ? Infinity : ratioPpm / PPM };
  }

  private persist<T>(command: () => Promise<T>): Promise<T> {
    return retryWhileUnavailable(command, { retryForMs: this.bookRetryMs, ...(this.onBookingRetry ? { onRetry: this.onBookingRetry } : {}) });
  }
}

/** Ledger fields of a recipe step: `step:<id>:<counter>` (step ids hold no `:`). */
const STEP_PREFIX = 'step:';
const STEP_COUNTERS: Record<string, keyof StepTotals> = {
  calls: 'calls',
  cached: 'cached',
  saved_micros: 'savedMicros',
  cost_micros: 'costMicros',
  input_tokens: 'inputTokens',
  output_tokens: 'outputTokens',
  credits: 'credits',
};

function stepTotalsOf(raw: Record<string, string>): Record<string, StepTotals> {
  const steps: Record<string, StepTotals> = {};
  for (const [field, value] of Object.entries(raw)) {
    if (!field.startsWith(STEP_PREFIX)) continue;
    const split = field.lastIndexOf(':');
    const counter = STEP_COUNTERS[field.slice(split + 1)];
    if (!counter) continue;
    const id = field.slice(STEP_PREFIX.length, split);
    const totals = (steps[id] ??= { calls: 0, cached: 0, savedMicros: 0, costMicros: 0, inputTokens: 0, outputTokens: 0, credits: 0 });
    totals[counter] = Number(value);
  }
  return steps;
}

/**
 * A usage counter as the settle script takes it (a non-negative integer). Counters only
 * inform, the cost is what is booked: a counter that is not an amount (negative, NaN,
 * past 2^53) counts 0 rather than making the booking of a paid call fail, and a fraction
 * (a provider billing 1.5 credits) counts whole.
 */
function usageCount(count: number | undefined): number {
  return count !== undefined && count > 0 && count <= Number.MAX_SAFE_INTEGER ? Math.ceil(count) : 0;
}

/** The scripts take integers Lua holds exactly: NaN or Infinity would reach Redis as words. */
function finiteMicros(micros: number, what: string): number {
  if (!Number.isFinite(micros) || Math.abs(micros) > Number.MAX_SAFE_INTEGER) throw new RangeError(`${what} of ${micros} µ$ is not a finite amount`);
  return micros;
}
