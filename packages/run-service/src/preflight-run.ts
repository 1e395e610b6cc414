import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { BadInputError, BudgetExhaustedError, RateLimitedError } from '@brandq/errors';
import { microsToUsd, type LlmTier } from '@brandq/ledger';
import { createLimiter, limitsFromConfig } from '@brandq/limiter';
import { estimateRun, type RunEstimate } from '@brandq/preflight';
import type { BrandQueue } from '@brandq/queue';
import type { Recipe } from '@brandq/recipe';
import { hintsOf } from './enqueue-run.js';
import type { LoadedSource } from './load-source.js';

export interface PreflightRequest {
  loaded: LoadedSource;
  recipe: Recipe;
  budgetMicros: number;
  noCache: boolean;
  /** Enqueue even when the estimate is above the budget (the budget still holds). */
  allowPartial: boolean;
  /** Refuse while a provider is in a fleet-wide cooldown (the HTTP endpoint does). */
  refuseDuringCooldown: boolean;
  /** The run's LLM tier (`--llm-tier`); recipe steps may name their own. */
  llmTier?: LlmTier | undefined;
}

/**
 * The guard in front of a new run: estimate it, then refuse a run that would immediately
 * hit a provider's cooldown (`BATCH_RATE_LIMITED`) or that the budget cannot cover
 * (`BUDGET_TOO_LOW`), each as a classified error carrying the figures.
 */
export async function preflightRun(deps: { redis: Redis; config: Config; queue: BrandQueue }, request: PreflightRequest): Promise<RunEstimate> {
  const { redis, config, queue } = deps;
  const { loaded } = request;
  refuseUnofferedTiers(request.recipe, request.llmTier ?? 'standard', config);
  const estimate = await estimateRun(
    { redis, config, limiter: createLimiter({ redis, providers: limitsFromConfig(config) }), liveWorkers: (await queue.getWorkers()).length },
    loaded.brands.map((b) => ({ name: b.name, hints: hintsOf(b) })),
    { noCache: request.noCache, recipe: request.recipe, ...(request.llmTier ? { llmTier: request.llmTier } : {}) },
  );
  refuseStepsThatCannotFit(estimate, createLimiter({ redis, providers: limitsFromConfig(config) }).limitsOf('llm').effectiveTpm);
  const cooldownEnds = Object.values(estimate.cooldowns);
  if (request.refuseDuringCooldown && cooldownEnds.length > 0) {
    const retryAfterMs = Math.max(...cooldownEnds) - Date.now();
    throw new RateLimitedError(`a provider is in a fleet-wide cooldown after a 429: try again in ${Math.ceil(retryAfterMs / 1000)} s`, {
      retryAfterMs,
      details: { code: 'BATCH_RATE_LIMITED', cooldowns: estimate.cooldowns },
    });
  }
  if (request.budgetMicros > 0 && estimate.estimatedCostMicros > request.budgetMicros && !request.allowPartial) {
    throw new BudgetExhaustedError(
      `the estimated cost $${microsToUsd(estimate.estimatedCostMicros).toFixed(2)} is above the budget $${microsToUsd(request.budgetMicros).toFixed(2)}: ` +
        'raise the budget, limit the brands, or allow a partial run',
      { details: { code: 'BUDGET_TOO_LOW', estimate } },
    );
  }
  return estimate;
}

/**
 * Flex and Batch are OpenAI's: OpenRouter offers neither, and Flex only some models (the
 * others answer 400 without falling back). A run that asks for a tier its provider or
 * model does not offer is refused before it exists, naming the step.
 */
function refuseUnofferedTiers(recipe: Recipe, runTier: LlmTier, config: Pick<Config, 'OPENAI_BASE_URL' | 'OPENAI_MODEL' | 'LLM_FLEX_MODELS'>): void {
  const openRouter = /openrouter/i.test(new URL(config.OPENAI_BASE_URL).hostname);
  for (const step of recipe.steps) {
    if (step.type !== 'llm') continue;
    const tier = step.tier ?? runTier;
    if (tier === 'standard') continue;
    const model = step.model ?? config.OPENAI_MODEL;
    if (openRouter) {
      throw new BadInputError(`recipe step "${step.id}": the ${tier} tier is OpenAI's; OpenRouter (${config.OPENAI_BASE_URL}) does not offer it: use --llm-tier standard`, {
        details: { step: step.id, tier },
      });
    }
    if (tier === 'flex' && !config.LLM_FLEX_MODELS.includes(model)) {
      throw new BadInputError(
        `recipe step "${step.id}": model ${model} has no flex tier (flex models: ${config.LLM_FLEX_MODELS.join(', ')}; set LLM_FLEX_MODELS if OpenAI added it): use --llm-tier batch or standard`,
        { details: { step: step.id, tier, model } },
      );
    }
  }
}

/**
 * A call the limiter admits whole or never: a step whose prompt and output cap together are
 * above the LLM's effective tokens-per-minute limit would pay for every brand's earlier
 * steps and then fail them all. Such a recipe is refused before the run exists.
 */
function refuseStepsThatCannotFit(estimate: RunEstimate, effectiveTpm: number): void {
  if (effectiveTpm <= 0) return;
  for (const step of estimate.steps) {
    const needed = step.maxPromptTokens + step.outputTokensPerCall;
    if (step.type !== 'llm' || step.maxPromptTokens === 0 || needed <= effectiveTpm) continue;
    throw new BadInputError(
      `recipe step "${step.id}": a call needs about ${needed.toLocaleString('en-US')} tokens (prompt ${step.maxPromptTokens.toLocaleString('en-US')} + output cap ${step.outputTokensPerCall.toLocaleString('en-US')}), ` +
        `above the LLM's effective limit of ${effectiveTpm.toLocaleString('en-US')} tokens per minute: lower the step's max_output_tokens or its search results, or raise OPENAI_TPM_LIMIT`,
      { details: { step: step.id, neededTokens: needed, effectiveTpm } },
    );
  }
}
