import { BadRequestError, BatchParkedError, ConfigError, RateLimitedError, RunThrottledError, isBrandqError, type Provider } from '@brandq/errors';
import { batchRequestId, type BatchDesk } from '@brandq/batch';
import type { CallUsage, CostLedger, ModelPrice, PaidProvider, Reservation, SettleResult } from '@brandq/ledger';
import { llmCostMicros, tavilyCostMicros, tierPrice, type LlmTier } from '@brandq/ledger';
import { LlmBadAnswer, answerOf, chatRequestBody, type LlmAnswer, type LlmClient, type LlmRequest } from '@brandq/llm';
import type { Logger } from '@brandq/logger';
import type { BrandJobData } from '@brandq/queue';
import { parseAnswer, recipeFingerprint, resultFields, shouldSkip, type FieldValue, type LlmStep, type Recipe, type SearchStep, type TemplateContext } from '@brandq/recipe';
import type { BrandResult, RunStore } from '@brandq/runs';
import type { CellWrite } from '@brandq/sheets';
import type { SearchOutcome, TavilySearchClient } from '@brandq/tavily';
import type { ResultCache } from '@brandq/cache';
import { retryWhileUnavailable } from '@brandq/redis';
import type { ProviderGate, RunCallShares } from './provider-gate.js';
import { resultCells, resultRange } from './result-row.js';
import { silentObserver, type PipelineObserver } from './pipeline-observer.js';
import { planLlm, planSearch, type LlmPlan, type StepDefaults } from './step-plans.js';

export interface PipelineDeps {
  runs: RunStore;
  ledger: CostLedger;
  search: TavilySearchClient;
  llm: LlmClient;
  /** What recipe steps leave unset (depth, result count, model, output cap). */
  defaults: StepDefaults;
  /** Where sheet rows go to be written in batches by the fleet's one flusher. */
  sheetWrites?: SheetWriteSink | undefined;
  gate: ProviderGate;
  /** The price each model's calls are reserved at (steps may name their own model). */
  priceOf(model: string): Promise<ModelPrice>;
  /**
   * Reservations of LLM calls are their worst case at the model's price times this factor
   * (>= 1): room for a tokenizer that counts differently from the provider's.
   */
  llmReserveFactor?: number;
  /** How long storing a paid result waits out a Redis outage (or a full Redis) before the attempt fails. */
  storeRetryMs?: number;
  tavilyUsdPerCredit: number;
  logger: Logger;
  observer?: PipelineObserver;
  /** Fair shares between runs: each run's own ceiling, and its admitted calls counted; absent = neither. */
  shares?: RunCallShares | undefined;
  /** Where batch-tier steps park their requests and find their answers; absent = no batch tier. */
  batches?: Pick<BatchDesk, 'park' | 'outcomeOf' | 'forget'> | undefined;
  /** Provider answers cached by what determines them; absent = no cache. */
  cache?: ResultCache | undefined;
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

/** What one finished step left: its search results, its fields, or that it was skipped. */
export type StepOutput = { search: SearchOutcome } | { values: Record<string, FieldValue> } | { skipped: true };

/** Work already paid for in an earlier attempt of the same job, per step, so a retry never pays twice. */
export interface BrandCheckpoint {
  /** The fingerprint of the recipe the steps were done under: a run switched to another recipe starts over. */
  recipe?: string;
  steps?: Record<string, StepOutput>;
  /** Written before recipes: the search of the default recipe (its step id is `search`). */
  search?: SearchOutcome;
}

export interface ProcessContext {
  checkpoint: BrandCheckpoint;
  saveCheckpoint(checkpoint: BrandCheckpoint): Promise<void>;
  signal?: AbortSignal;
  /** The run's own ceiling in calls per minute at each provider (`--max-rpm`), read when the job started. */
  maxRpm?: number | undefined;
  /** The run's LLM tier (`--llm-tier`); a step's own tier wins. */
  llmTier?: LlmTier | undefined;
  /** This brand's flex calls were refused for capacity past the run's `--flex-fallback-after`: they go standard. */
  flexFallback?: boolean | undefined;
}

/** What every call of one job shares: its abort signal, its run's ceiling and LLM tier. */
type CallScope = Pick<ProcessContext, 'signal' | 'maxRpm' | 'llmTier' | 'flexFallback'> & { recipeFingerprint: string };

/** The tier a step's calls go at for this brand: the step's own, else the run's; a flex call that waited out its fallback goes standard. */
function tierOf(step: LlmStep, scope: CallScope): LlmTier {
  const tier = step.tier ?? scope.llmTier ?? 'standard';
  return tier === 'flex' && scope.flexFallback ? 'standard' : tier;
}

/**
 * The model's word is never trusted as-is: the step's fields check every value, and only
 * links the step was shown may be cited. An unusable answer stays an `LlmBadAnswer`.
 */
function checkedAnswer(step: LlmStep, plan: LlmPlan, answer: LlmAnswer | LlmBadAnswer): Record<string, FieldValue> | LlmBadAnswer {
  if (answer instanceof LlmBadAnswer) return answer;
  const parsed = parseAnswer(step, answer.json, plan.shownUrls);
  if (!parsed.ok) return LlmBadAnswer.of(`answer does not match the schema: ${parsed.message}`, JSON.stringify(answer.json), answer.usage, answer.headers);
  return parsed.values;
}

export interface ProcessOutcome {
  result: BrandResult;
  /** False when the brand already had a result and no call was made. */
  fresh: boolean;
}

const FINGERPRINTS = new WeakMap<Recipe, string>();

/** A recipe's fingerprint, computed once per recipe object (workers keep one per run). */
function fingerprintOf(recipe: Recipe): string {
  let fingerprint = FINGERPRINTS.get(recipe);
  if (fingerprint === undefined) {
    fingerprint = recipeFingerprint(recipe);
    FINGERPRINTS.set(recipe, fingerprint);
  }
  return fingerprint;
}

/**
 * The steps an earlier attempt finished under this recipe. Steps done under another recipe
 * (the run was switched with --force) are not reused: the same step id may ask other
 * questions now. A checkpoint from before recipes held the default recipe's search.
 */
function checkpointedSteps(checkpoint: BrandCheckpoint, fingerprint: string): Record<string, StepOutput> {
  if (checkpoint.search) return checkpoint.recipe === undefined || checkpoint.recipe === fingerprint ? { search: { search: checkpoint.search } } : {};
  if (checkpoint.recipe !== fingerprint) return {};
  return { ...checkpoint.steps };
}

/** Which call of a brand a paid call is: the provider, and the recipe step it serves. */
interface CallSite {
  provider: PaidProvider & Provider;
  step: string;
}

/**
 * One brand, end to end: the run's recipe, step by step (searches and LLM calls), then
 * store and write back. Every provider call passes the shared limiter (rate, tokens,
 * concurrency, cooldown) and the run's budget; every finished step is checkpointed before
 * the next starts; failures arrive here already classified and leave classified.
 */
export class BrandPipeline {
  private readonly observer: PipelineObserver;

  constructor(private readonly deps: PipelineDeps) {
    this.observer = deps.observer ?? silentObserver;
  }

  async process(brand: BrandJobData, recipe: Recipe, ctx: ProcessContext): Promise<ProcessOutcome> {
    const { runs } = this.deps;
    const existing = await runs.getResult(brand.runId, brand.key);
    if (existing) {
      await this.writeBack(brand, recipe, existing);
      return { result: existing, fresh: false };
    }

    const fingerprint = fingerprintOf(recipe);
    const done = checkpointedSteps(ctx.checkpoint, fingerprint);
    const scope: CallScope = { signal: ctx.signal, maxRpm: ctx.maxRpm, llmTier: ctx.llmTier, flexFallback: ctx.flexFallback, recipeFingerprint: fingerprint };
    const template: TemplateContext & { results: Record<string, SearchOutcome['hits']>; fields: Record<string, FieldValue> } = {
      brand: brand.name,
      hints: brand.hints,
      results: {},
      fields: {},
    };
    for (const step of recipe.steps) {
      let output = done[step.id];
      if (!output) {
        output = shouldSkip(step, template)
          ? { skipped: true }
          : step.type === 'search'
            ? { search: await this.search(brand, step, template, scope) }
            : { values: await this.extract(brand, step, template, scope) };
        done[step.id] = output;
        await ctx.saveCheckpoint({ recipe: fingerprint, steps: { ...done } });
      }
      if ('search' in output) template.results[step.id] = output.search.hits;
      if ('values' in output) Object.assign(template.fields, output.values);
    }

    const result: BrandResult = {
      key: brand.key,
      brand: brand.name,
      rowNumber: brand.rowNumber,
      fields: Object.fromEntries(resultFields(recipe).map((f) => [f.name, template.fields[f.name] ?? null])),
      recipe: fingerprint,
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
    await this.writeBack(brand, recipe, result);
    return { result, fresh: true };
  }

  private async search(brand: BrandJobData, step: SearchStep, template: TemplateContext, scope: CallScope): Promise<SearchOutcome> {
    const { search, tavilyUsdPerCredit } = this.deps;
    const plan = planSearch(step, template, this.deps.defaults);
    const worstCase = tavilyCostMicros(plan.credits, tavilyUsdPerCredit);
    const site: CallSite = { provider: 'tavily', step: step.id };
    const paid = () =>
      this.paidCall(site, brand.runId, { worstCaseMicros: worstCase, scope }, async () => {
        const outcome = await search.search(plan.query, plan.request);
        // Credits that are not an amount (negative, or past what the ledger can hold) would book 0 or
        // make the ledger refuse a paid answer: the depth's price is what such a search costs.
        const usable = outcome.credits >= 0 && Number.isSafeInteger(tavilyCostMicros(outcome.credits, tavilyUsdPerCredit));
        const credits = usable ? outcome.credits : plan.credits;
        return { value: outcome, usage: { costMicros: tavilyCostMicros(credits, tavilyUsdPerCredit), credits } };
      });
    return this.cached(brand, site, plan.cacheKey, worstCase, paid, scope.signal);
  }

  /**
   * One LLM call (through the cache) whose answer the step's own fields validate, and one
   * repair call, never cached, with the validation error when the answer is unusable.
   */
  private async extract(brand: BrandJobData, step: LlmStep, template: TemplateContext, scope: CallScope): Promise<Record<string, FieldValue>> {
    const plan = planLlm(step, template, this.deps.defaults);
    const site: CallSite = { provider: 'llm', step: step.id };
    const worstCase = await this.llmWorstCaseMicros(plan, tierOf(step, scope));
    try {
      return await this.cached(brand, site, plan.cacheKey, worstCase, async () => {
        const answer = await this.llmCall(brand, step, plan, scope, 0);
        if (answer instanceof LlmBadAnswer) throw answer;
        return answer;
      }, scope.signal);
    } catch (error) {
      if (!(error instanceof LlmBadAnswer)) throw error;
      this.deps.logger.warn({ brand: brand.name, step: step.id, reason: error.error.message }, 'LLM answer rejected, asking once more');
      const repaired = await this.llmCall(brand, step, planLlm(step, template, this.deps.defaults, error.error.message), scope, 1);
      if (repaired instanceof LlmBadAnswer) throw repaired.error;
      return repaired;
    }
  }

  /** Serves a provider answer from the cache when allowed; a hit is booked as saved money. */
  private async cached<T>(brand: BrandJobData, site: CallSite, key: string, savedMicros: number, paid: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const { cache, ledger } = this.deps;
    if (!cache || brand.noCache) return paid();
    const { value, hit } = await cache.getOrCompute(site.provider, key, paid, signal);
    if (hit) {
      await ledger.bookCacheHit(brand.runId, site.provider, savedMicros, site.step);
      this.observer.cacheHit(site.provider);
    }
    return value;
  }

  /** The most an LLM call can cost: its prompt and output cap at its model's price for its tier, with the reserve factor. */
  private async llmWorstCaseMicros(plan: LlmPlan, tier: LlmTier, promptTokens = this.deps.llm.promptTokensOf(plan.request.messages, plan.request.responseFormat)): Promise<number> {
    const { priceOf, llmReserveFactor = 1 } = this.deps;
    const price = tierPrice(await priceOf(plan.request.model), tier);
    return Math.ceil(llmCostMicros(price, promptTokens, plan.request.maxOutputTokens) * Math.max(1, llmReserveFactor));
  }

  /**
   * One LLM call at its tier; the answer's fields are valid for the step, or it is an
   * `LlmBadAnswer` (billed all the same). `round` 0 is the step's ask, 1 its repair.
   */
  private async llmCall(brand: BrandJobData, step: LlmStep, plan: LlmPlan, scope: CallScope, round: number): Promise<Record<string, FieldValue> | LlmBadAnswer> {
    const tier = tierOf(step, scope);
    if (tier === 'batch') return this.batchCall(brand, step, plan, round, scope.recipeFingerprint);
    const { llm, gate } = this.deps;
    const request: LlmRequest = tier === 'flex' ? { ...plan.request, serviceTier: 'flex' } : plan.request;
    const promptTokens = llm.promptTokensOf(request.messages, request.responseFormat);
    const price = tierPrice(await this.deps.priceOf(request.model), tier);
    const worstCaseMicros = await this.llmWorstCaseMicros(plan, tier, promptTokens);
    const site: CallSite = { provider: 'llm', step: step.id };
    const answer: LlmAnswer | LlmBadAnswer = await this.paidCall(
      site,
      brand.runId,
      // A finalize step runs under the fleet's lower finalize concurrency.
      { tokens: promptTokens + request.maxOutputTokens, priority: step.finalize ? 'finalize' : 'default', worstCaseMicros, scope },
      async () => {
        const answer = await llm.complete(request, scope.signal);
        const { usage } = answer;
        const tableMicros = llmCostMicros(price, usage.promptTokens, usage.completionTokens);
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
      },
    );
    // After the booking: the answer's cost is in the ledger before anything else touches Redis.
    await gate.syncFromHeaders('llm', answer.headers);
    return checkedAnswer(step, plan, answer);
  }

  /**
   * A batch-tier call: the answer the fleet's batch coordinator handed back (booked by it
   * from the results file), or the request parked for the run step's next batch and the
   * job told to wait for it. No limiter permit: batches have their own queue at the provider.
   */
  private async batchCall(brand: BrandJobData, step: LlmStep, plan: LlmPlan, round: number, fingerprint: string): Promise<Record<string, FieldValue> | LlmBadAnswer> {
    const { batches, llm } = this.deps;
    if (!batches) throw new ConfigError(`step "${step.id}" runs at the batch tier, but this worker has no batch coordinator`);
    const customId = batchRequestId(step.id, round, fingerprint, brand.key);
    const outcome = await batches.outcomeOf(brand.runId, customId);
    if (outcome?.kind === 'failed') {
      // Taken by this brand's failure: a retry of the brand asks afresh.
      await batches.forget(brand.runId, customId);
      throw new BadRequestError(`the batch request of step "${step.id}" failed: ${outcome.reason}`, { provider: 'llm' });
    }
    if (outcome) return checkedAnswer(step, plan, answerOf(outcome.completion, plan.request, new Headers()));
    const promptTokens = llm.promptTokensOf(plan.request.messages, plan.request.responseFormat);
    await batches.park(brand.runId, {
      customId,
      brandKey: brand.key,
      step: step.id,
      model: plan.request.model,
      body: chatRequestBody(plan.request),
      tokens: promptTokens + plan.request.maxOutputTokens,
      worstCaseMicros: await this.llmWorstCaseMicros(plan, 'batch', promptTokens),
      attempt: 0,
    });
    throw new BatchParkedError(`step "${step.id}" waits for its batch`, { provider: 'llm' });
  }

  private async writeBack(brand: BrandJobData, recipe: Recipe, result: BrandResult): Promise<void> {
    const { sheetWrites } = this.deps;
    if (brand.source.type !== 'sheet' || !sheetWrites) return;
    const { spreadsheetId, sheetTitle, resultColumn } = brand.source;
    const fields = resultFields(recipe);
    await sheetWrites.enqueue(brand.runId, spreadsheetId, { range: resultRange(sheetTitle, resultColumn, brand.rowNumber, fields.length), values: [resultCells(fields, result)] });
  }

  /**
   * The order matters: the limiter first (it may wait), then the budget (never waits), then
   * the call. Every permit ends on every path (settled when the request may have gone out,
   * released when it never did), so no lease outlives its call, whatever throws.
   */
  private async paidCall<T>(
    site: CallSite,
    runId: string,
    opts: { tokens?: number; priority?: 'default' | 'finalize'; worstCaseMicros: number; scope: CallScope },
    call: () => Promise<PaidCallResult<T>>,
  ): Promise<T> {
    const { gate, ledger, shares } = this.deps;
    const { provider } = site;
    const { signal, maxRpm } = opts.scope;
    if (shares && maxRpm !== undefined) {
      const waitMs = await shares.admitUnderCeiling(runId, provider, maxRpm);
      if (waitMs > 0) throw new RunThrottledError(`run ${runId} is at its own ceiling of ${maxRpm} calls per minute at ${provider}`, { provider, retryAfterMs: waitMs });
    }
    const permit = await gate.acquire(provider, {
      ...(opts.tokens === undefined ? {} : { tokens: opts.tokens }),
      ...(opts.priority && opts.priority !== 'default' ? { priority: opts.priority } : {}),
      ...(signal ? { signal } : {}),
    });
    shares?.admitted(runId, provider);
    let sent = false;
    let usedTokens = 0;
    try {
      const reservation = await ledger.reserve(runId, provider, opts.worstCaseMicros, site.step);
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
