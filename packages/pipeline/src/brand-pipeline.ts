import { RateLimitedError, isBrandqError, type Provider } from '@brandq/errors';
import type { CallUsage, CostLedger, ModelPrice, PaidProvider, Reservation, SettleResult } from '@brandq/ledger';
import { llmCostMicros, tavilyCostMicros } from '@brandq/ledger';
import { BRAND_FACTS_SCHEMA_VERSION, LlmBadAnswer, buildBrandPrompt, type BrandFactsAnswer, type LlmAnswer, type LlmClient } from '@brandq/llm';
import type { Logger } from '@brandq/logger';
import type { BrandJobData } from '@brandq/queue';
import type { BrandResult, RunStore } from '@brandq/runs';
import type { CellWrite } from '@brandq/sheets';
import { creditsForDepth, searchQueryFor, type SearchOutcome, type TavilySearchClient } from '@brandq/tavily';
import type { ProviderGate } from './provider-gate.js';
import { resultCells, resultRange } from './result-row.js';
import { cacheKeyOf, type ResultCache } from '@brandq/cache';
import { retryWhileUnavailable } from '@brandq/redis';
import { silentObserver, type PipelineObserver } from './pipeline-observer.js';

export interface PipelineDeps {
  runs: RunStore;
  ledger: CostLedger;
  search: TavilySearchClient;
  llm: LlmClient;
  /** Where sheet rows go to be written in batches by the fleet's one flusher. */
  sheetWrites?: SheetWriteSink | undefined;
  gate: ProviderGate;
  llmPrice: ModelPrice;
  /**
   * Reservations of LLM calls are their worst case at `llmPrice` times this factor (>= 1):
   * room for a tokenizer that counts differently from the provider's.
   */
  llmReserveFactor?: number;
  /** How long storing a paid result waits out a Redis outage (or a full Redis) before the attempt fails. */
  storeRetryMs?: number;
  tavilyUsdPerCredit: number;
  logger: Logger;
  observer?: PipelineObserver;
  /** Provider answers cached by what determines them; absent = no cache. */
  cache?: ResultCache | undefined;
}

/** Cache key of a search: what determines Tavily's answer. */
export function searchCacheKey(query: string, depth: string, maxResults: number): string {
  return cacheKeyOf({ query, depth, maxResults });
}

/** Cache key of an extraction: model, output cap, schema version and the exact prompt. */
export function llmCacheKey(model: string, maxOutputTokens: number, messages: unknown): string {
  return cacheKeyOf({ model, maxOutputTokens, schema: BRAND_FACTS_SCHEMA_VERSION, messages });
}

/** What a paid call returns: its value, the tokens it really used, and what it cost. */
interface PaidCallResult<T> {
  value: T;
  usedTokens?: number;
  usage: CallUsage;
}

export interface SheetWriteSink {
  enqueue(runId: string, spreadsheetId: string, write: CellWrite): Promise<void>;
}

/** Work already paid for in an earlier attempt of the same job, so a retry does not pay twice. */
export interface BrandCheckpoint {
  search?: SearchOutcome;
}

export interface ProcessContext {
  checkpoint: BrandCheckpoint;
  saveCheckpoint(checkpoint: BrandCheckpoint): Promise<void>;
  signal?: AbortSignal;
}

export interface ProcessOutcome {
  result: BrandResult;
  /** False when the brand already had a result and no call was made. */
  fresh: boolean;
}

/**
 * One brand, end to end: search, extract, store, write back. Every provider call passes
 * the shared limiter (rate, tokens, concurrency, cooldown) and the run's budget; failures
 * arrive here already classified and leave classified.
 */
export class BrandPipeline {
  private readonly observer: PipelineObserver;

  constructor(private readonly deps: PipelineDeps) {
    this.observer = deps.observer ?? silentObserver;
  }

  async process(brand: BrandJobData, ctx: ProcessContext): Promise<ProcessOutcome> {
    const { runs } = this.deps;
    const existing = await runs.getResult(brand.runId, brand.key);
    if (existing) {
      await this.writeBack(brand, existing);
      return { result: existing, fresh: false };
    }

    const search = ctx.checkpoint.search ?? (await this.search(brand, ctx.signal));
    if (!ctx.checkpoint.search) await ctx.saveCheckpoint({ ...ctx.checkpoint, search });

    const facts = await this.extract(brand, search, ctx.signal);
    const urls = new Set(search.hits.map((h) => h.url));
    const result: BrandResult = {
      key: brand.key,
      brand: brand.name,
      rowNumber: brand.rowNumber,
      ...facts,
      // Only sources we actually showed the model: an answer cannot invent or inject links.
      sources: facts.sources.filter((u) => urls.has(u)),
      processedAt: new Date().toISOString(),
    };
    // The answer is paid for: a Redis that is full or away is waited out, never a reason to drop it.
    await retryWhileUnavailable(() => runs.recordSuccess({ runId: brand.runId, ...result }), {
      retryForMs: this.deps.storeRetryMs ?? 120_000,
      onRetry: (err, waitMs) => {
        this.observer.redisRetry('result');
        this.deps.logger.warn({ runId: brand.runId, brand: brand.name, err: err.message, waitMs }, 'Redis cannot store a paid result yet; retrying');
      },
    });
    await this.writeBack(brand, result);
    return { result, fresh: true };
  }

  private async search(brand: BrandJobData, signal?: AbortSignal): Promise<SearchOutcome> {
    const { search, tavilyUsdPerCredit } = this.deps;
    const query = searchQueryFor(brand.name, brand.hints);
    const worstCase = tavilyCostMicros(creditsForDepth(search.depth), tavilyUsdPerCredit);
    const paid = () =>
      this.paidCall('tavily', brand.runId, { worstCaseMicros: worstCase, signal }, async () => {
        const outcome = await search.search(query);
        // Credits that are not an amount (negative, or past what the ledger can hold) would book 0 or
        // make the ledger refuse a paid answer: the depth's price is what such a search costs.
        const usable = outcome.credits >= 0 && Number.isSafeInteger(tavilyCostMicros(outcome.credits, tavilyUsdPerCredit));
        const credits = usable ? outcome.credits : creditsForDepth(search.depth);
        return { value: outcome, usage: { costMicros: tavilyCostMicros(credits, tavilyUsdPerCredit), credits } };
      });
    return this.cached(brand, 'tavily', searchCacheKey(query, search.depth, search.maxResults), worstCase, paid, signal);
  }

  /**
   * One LLM call (through the cache), and one repair call, never cached, with the
   * validation error when the answer is unusable.
   */
  private async extract(brand: BrandJobData, search: SearchOutcome, signal?: AbortSignal): Promise<BrandFactsAnswer> {
    const { llm } = this.deps;
    const messages = buildBrandPrompt(brand.name, brand.hints, search.hits);
    const promptTokens = llm.promptTokensOf(messages);
    const worstCase = this.llmWorstCaseMicros(promptTokens);
    try {
      return await this.cached(brand, 'llm', llmCacheKey(llm.model, llm.maxOutputTokens, messages), worstCase, async () => {
        const answer = await this.llmCall(brand, messages, promptTokens, signal);
        if (answer instanceof LlmBadAnswer) throw answer;
        return answer.facts;
      }, signal);
    } catch (error) {
      if (!(error instanceof LlmBadAnswer)) throw error;
      this.deps.logger.warn({ brand: brand.name, reason: error.error.message }, 'LLM answer rejected, asking once more');
      const repair = buildBrandPrompt(brand.name, brand.hints, search.hits, error.error.message);
      const repaired = await this.llmCall(brand, repair, llm.promptTokensOf(repair), signal);
      if (repaired instanceof LlmBadAnswer) throw repaired.error;
      return repaired.facts;
    }
  }

  /** Serves a provider answer from the cache when allowed; a hit is booked as saved money. */
  private async cached<T>(
    brand: BrandJobData,
    provider: 'tavily' | 'llm',
    key: string,
    savedMicros: number,
    paid: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const { cache, ledger } = this.deps;
    if (!cache || brand.noCache) return paid();
    const { value, hit } = await cache.getOrCompute(provider, key, paid, signal);
    if (hit) {
      await ledger.bookCacheHit(brand.runId, provider, savedMicros);
      this.observer.cacheHit(provider);
    }
    return value;
  }

  /** The most an LLM call with this prompt can cost: the output cap at the configured price, with the reserve factor. */
  private llmWorstCaseMicros(promptTokens: number): number {
    const { llm, llmPrice, llmReserveFactor = 1 } = this.deps;
    return Math.ceil(llmCostMicros(llmPrice, promptTokens, llm.maxOutputTokens) * Math.max(1, llmReserveFactor));
  }

  /** `promptTokens`: the request's input tokens as the provider bills them (by the caller, which prices it too). */
  private async llmCall(
    brand: BrandJobData,
    messages: Parameters<LlmClient['extractFacts']>[0],
    promptTokens: number,
    signal?: AbortSignal,
  ): Promise<LlmAnswer | LlmBadAnswer> {
    const { llm, llmPrice, gate } = this.deps;
    const tokens = promptTokens + llm.maxOutputTokens;
    const answer = await this.paidCall('llm', brand.runId, { tokens, worstCaseMicros: this.llmWorstCaseMicros(promptTokens), signal }, async () => {
      const answer = await llm.extractFacts(messages, signal);
      const { usage } = answer;
      const tableMicros = llmCostMicros(llmPrice, usage.promptTokens, usage.completionTokens);
      const reportedMicros = usage.costUsd === undefined ? undefined : Math.round(usage.costUsd * 1_000_000);
      // The provider's own cost wins, unless it is not an amount at all (negative, NaN, or a
      // JSON number past 1e308): the ledger would refuse it and the paid answer be lost, or
      // book 0 for a call that was billed.
      const usable = reportedMicros !== undefined && Number.isSafeInteger(reportedMicros) && reportedMicros >= 0;
      if (reportedMicros !== undefined && !usable) {
        this.deps.logger.warn({ runId: brand.runId, reportedCostUsd: String(usage.costUsd), bookedMicros: tableMicros }, 'LLM provider reported a cost that is not an amount; booking the table price');
      }
      const costMicros = usable ? reportedMicros : tableMicros;
      return {
        value: answer,
        usedTokens: usage.promptTokens + usage.completionTokens,
        usage: { costMicros, inputTokens: usage.promptTokens, outputTokens: usage.completionTokens },
      };
    });
    // After the booking: the answer's cost is in the ledger before anything else touches Redis.
    await gate.syncFromHeaders('llm', answer.headers);
    return answer;
  }

  private async writeBack(brand: BrandJobData, result: BrandResult): Promise<void> {
    const { sheetWrites } = this.deps;
    if (brand.source.type !== 'sheet' || !sheetWrites) return;
    const { spreadsheetId, sheetTitle, resultColumn } = brand.source;
    await sheetWrites.enqueue(brand.runId, spreadsheetId, { range: resultRange(sheetTitle, resultColumn, brand.rowNumber), values: [resultCells(result)] });
  }

  /**
   * The order matters: the limiter first (it may wait), then the budget (never waits), then
   * the call. Every permit ends on every path (settled when the request may have gone out,
   * released when it never did), so no lease outlives its call, whatever throws.
   */
  private async paidCall<T>(
    provider: PaidProvider & Provider,
    runId: string,
    opts: { tokens?: number; worstCaseMicros: number; signal?: AbortSignal | undefined },
    call: () => Promise<PaidCallResult<T>>,
  ): Promise<T> {
    const { gate, ledger } = this.deps;
    const permit = await gate.acquire(provider, { ...(opts.tokens === undefined ? {} : { tokens: opts.tokens }), ...(opts.signal ? { signal: opts.signal } : {}) });
    let sent = false;
    let usedTokens = 0;
    try {
      const reservation = await ledger.reserve(runId, provider, opts.worstCaseMicros);
      sent = true;
      const outcome = await this.callProvider(provider, reservation, call);
      usedTokens = outcome.usedTokens ?? 0;
      // Money first: the call is billed from here on. A crash before the booking leaves the
      // reservation to expire into unconfirmed spend, so the budget still counts it.
      const settled = await ledger.settle(reservation, outcome.usage);
      this.observer.booked(runId, provider, outcome.usage);
      if (settled.overrunMicros > 0) this.reportOverrun(runId, provider, settled);
      return outcome.value;
    } finally {
      // Once the money is reserved the request is attempted: it counts against the provider's
      // window whatever its outcome (a refused connection too, on the safe side); a request
      // never attempted (the budget said no) gives everything back.
      await (sent ? permit.settle({ usedTokens }) : permit.release()).catch((err: unknown) =>
        this.deps.logger.warn({ provider, err: String(err) }, 'limiter permit not returned; its lease expires on its own'),
      );
    }
  }

  /** The call itself; a failure books or frees its reservation and holds the fleet on a 429. */
  private async callProvider<T>(provider: PaidProvider & Provider, reservation: Reservation, call: () => Promise<PaidCallResult<T>>): Promise<PaidCallResult<T>> {
    const { gate, ledger, logger } = this.deps;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const outcome = await call();
      this.observer.providerCall(provider, seconds(), 'ok');
      return outcome;
    } catch (error) {
      this.observer.providerCall(provider, seconds(), isBrandqError(error) ? error.kind : 'error');
      try {
        if (error instanceof RateLimitedError) {
          this.observer.rateLimited(provider);
          // A 429 holds the fleet first of all: until the cooldown is in Redis, other workers
          // are still admitted and their requests land inside the wait the provider announced.
          await gate.cooldown(provider, error.retryAfterMs ?? 1000);
          if (error.headers) await gate.syncFromHeaders(provider, error.headers);
        }
      } catch (holdFailed) {
        // The 429 stays the job's error (its wait and attempt count depend on it); a hold that
        // could not be recorded is logged, and the fleet's own pacing still applies.
        logger.warn({ provider, err: String(holdFailed) }, 'fleet cooldown after a 429 not recorded');
      } finally {
        // No answer says whether the provider billed a request that timed out or lost its
        // connection: keep its worst case as unconfirmed spend, so the budget still holds.
        const mayBeBilled = !isBrandqError(error) || error.outcomeUnknown;
        if (mayBeBilled) this.observer.unconfirmed(reservation.runId, provider, reservation.micros);
        await (mayBeBilled ? ledger.bookUnconfirmed(reservation) : ledger.release(reservation)).catch((err: unknown) =>
          logger.warn({ provider, err: String(err) }, 'reservation not returned; it expires into unconfirmed spend'),
        );
      }
      throw error;
    }
  }

  /** A call cost more than its reservation: the configured price is below what the provider bills. */
  private reportOverrun(runId: string, provider: PaidProvider, settled: SettleResult): void {
    this.observer.overrun(runId, provider, settled.overrunMicros);
    if (!settled.firstOverrun) return;
    const ratio = Number.isFinite(settled.observedRatio) ? `${settled.observedRatio.toFixed(2)}x the reserved worst case` : 'a call reserved at 0';
    this.deps.logger.warn(
      { runId, provider, overrunMicros: settled.overrunMicros, observedRatio: Number.isFinite(settled.observedRatio) ? Number(settled.observedRatio.toFixed(3)) : null },
      `${provider} billed ${ratio}: the configured price is below what the provider bills (check LLM_PRICING / TAVILY_COST_PER_CREDIT); later reservations of run ${runId} are raised by the ratio seen`,
    );
  }

}
