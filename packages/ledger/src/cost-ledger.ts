import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BudgetExhaustedError } from '@brandq/errors';
import { defineScripts, runKeys } from '@brandq/redis';

const SCRIPTS = [
  { name: 'brandqReserveBudget', file: new URL('../lua/reserve-budget.lua', import.meta.url), numberOfKeys: 3 },
  { name: 'brandqSettleCost', file: new URL('../lua/settle-cost.lua', import.meta.url), numberOfKeys: 4 },
  { name: 'brandqReleaseReservation', file: new URL('../lua/release-reservation.lua', import.meta.url), numberOfKeys: 3 },
] as const;

interface ScriptedRedis extends Redis {
  brandqReserveBudget(ledger: string, reservations: string, amounts: string, id: string, micros: number, ttlMs: number): Promise<[number, number]>;
  brandqSettleCost(
    ledger: string, reservations: string, amounts: string, settled: string,
    id: string, provider: string, costMicros: number, input: number, output: number, credits: number, booking: string,
  ): Promise<number>;
  brandqReleaseReservation(ledger: string, reservations: string, amounts: string, id: string): Promise<number>;
}

export type PaidProvider = 'tavily' | 'llm' | 'sheets';

export interface Reservation {
  id: string;
  runId: string;
  provider: PaidProvider;
  micros: number;
}

export interface CallUsage {
  costMicros: number;
  inputTokens?: number;
  outputTokens?: number;
  credits?: number;
}

export interface ProviderTotals {
  calls: number;
  /** Answers served from the cache: no call, no cost. */
  cached: number;
  /** What the cached answers would have cost. */
  savedMicros: number;
  costMicros: number;
  inputTokens: number;
  outputTokens: number;
  credits: number;
}

export interface LedgerSnapshot {
  budgetMicros: number;
  spentMicros: number;
  reservedMicros: number;
  expiredReservations: number;
  providers: Record<PaidProvider, ProviderTotals>;
}

/**
 * Money per run, in Redis, in integer micro-dollars so concurrent increments never drift.
 * Every paid call reserves its worst case first and settles to the real cost after, so the
 * run's budget holds across the whole fleet, not just one process.
 */
export class CostLedger {
  private readonly redis: ScriptedRedis;

  /**
   * @param bookRetryMs how long a booking of money already spent keeps retrying while Redis
   *   is unreachable (a restart, a failover) before it gives up and throws.
   */
  constructor(redis: Redis, private readonly reservationTtlMs = 10 * 60_000, private readonly bookRetryMs = 120_000) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as ScriptedRedis;
  }

  async setBudget(runId: string, budgetMicros: number): Promise<void> {
    await this.redis.hset(runKeys(runId).ledger, 'budget_micros', Math.max(0, Math.round(budgetMicros)));
  }

  /** Reserves `micros` or throws `BudgetExhaustedError` with the figures. */
  async reserve(runId: string, provider: PaidProvider, micros: number): Promise<Reservation> {
    const keys = runKeys(runId);
    const id = randomUUID();
    const amount = Math.max(0, Math.ceil(micros));
    const [ok, available] = await this.redis.brandqReserveBudget(keys.ledger, keys.reservations, keys.reservationAmounts, id, amount, this.reservationTtlMs);
    if (ok !== 1) {
      throw new BudgetExhaustedError(`budget of run ${runId} cannot cover the next ${provider} call`, {
        provider,
        details: { neededMicros: amount, availableMicros: available },
      });
    }
    return { id, runId, provider, micros: amount };
  }

  async settle(reservation: Reservation, usage: CallUsage): Promise<void> {
    await this.book(reservation.runId, reservation.provider, usage, reservation.id);
  }

  /**
   * Books a call that had no reservation (cannot be refused: the money is already spent).
   * Money spent must reach the ledger even if Redis is away at that moment: the booking is
   * retried with backoff for `bookRetryMs`, and carries an id so a retry whose first try
   * did land (the reply was lost) is not counted twice.
   */
  async book(runId: string, provider: PaidProvider, usage: CallUsage, reservationId = ''): Promise<void> {
    const keys = runKeys(runId);
    const booking = reservationId || randomUUID();
    await this.persist(() =>
      this.redis.brandqSettleCost(
        keys.ledger, keys.reservations, keys.reservationAmounts, keys.settledBookings,
        reservationId, provider, Math.round(usage.costMicros), usage.inputTokens ?? 0, usage.outputTokens ?? 0, usage.credits ?? 0, booking,
      ),
    );
  }

  private async persist<T>(command: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.bookRetryMs;
    let waitMs = 100;
    for (;;) {
      try {
        return await command();
      } catch (err) {
        if (!isRedisUnavailable(err) || Date.now() + waitMs > deadline) throw err;
        await new Promise((r) => setTimeout(r, waitMs));
        waitMs = Math.min(waitMs * 2, 2000);
      }
    }
  }

  /** A cache hit: nothing spent, the avoided cost recorded as saved. */
  async bookCacheHit(runId: string, provider: PaidProvider, savedMicros: number): Promise<void> {
    const key = runKeys(runId).ledger;
    await this.redis.multi().hincrby(key, `${provider}:cached`, 1).hincrby(key, `${provider}:saved_micros`, Math.round(savedMicros)).exec();
  }

  async release(reservation: Reservation): Promise<void> {
    const keys = runKeys(reservation.runId);
    await this.redis.brandqReleaseReservation(keys.ledger, keys.reservations, keys.reservationAmounts, reservation.id);
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
    });
    return {
      budgetMicros: n('budget_micros'),
      spentMicros: n('spent_micros'),
      reservedMicros: n('reserved_micros'),
      expiredReservations: n('expired_reservations'),
      providers: { tavily: totals('tavily'), llm: totals('llm'), sheets: totals('sheets') },
    };
  }
}

/** Replies that mean "this Redis cannot serve right now", not "the command is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/;
const CONNECTION_TROUBLE = /Connection is closed|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|Stream isn't writeable|Failed to refresh slots cache|None of startup nodes is available/i;

/** A failure to reach Redis (worth retrying), as opposed to an error of the command itself. */
function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return UNAVAILABLE_REPLY.test(err.message);
  return err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError' || CONNECTION_TROUBLE.test(err.message);
}
