import type { LlmError } from './openai-errors.js';

/** USD per million tokens (= micro-dollars per token). */
export interface LlmPricing {
  inputPerMillion: number;
  outputPerMillion: number;
}

/**
 * How OpenAI served and billed a chat completion: `standard` (no `service_tier`, or
 * "auto"/"default"), `flex` (`service_tier: "flex"`) or `batch` (a line of a Batch API file).
 */
export type LlmTier = 'standard' | 'flex' | 'batch';
export type CheaperTier = Exclude<LlmTier, 'standard'>;
export const LLM_TIERS: readonly LlmTier[] = ['standard', 'flex', 'batch'];

/** OpenAI bills Flex and Batch tokens at half the standard price. */
export const DEFAULT_TIER_DISCOUNT: Readonly<Record<CheaperTier, number>> = { flex: 0.5, batch: 0.5 };

/**
 * Models the fake serves with `service_tier: "flex"` unless `flexModels` says otherwise:
 * the OpenAI-flavoured default model (so the demo can run on Flex) and the models OpenAI's
 * pricing page lists with Flex prices.
 */
export const DEFAULT_FLEX_MODELS: readonly string[] = ['gpt-4o-mini', 'o3', 'o4-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5-nano', 'gpt-5.1'];

/** Pricing options shared by the chat answers and the batch lines. */
export interface TierPricingOptions {
  /**
   * Share of the standard price taken off per cheaper tier (default 0.5 each: half price).
   * The tier price is the standard price per million times `1 - discount`, exactly as brandq
   * computes it, so both round the same way.
   */
  tierDiscount?: Partial<Record<CheaperTier, number>>;
  /** Exact tier prices per model, winning over `tierDiscount`: `{ flex: { 'gpt-4o-mini': {...} } }`. */
  tierPrices?: Partial<Record<CheaperTier, Record<string, LlmPricing>>>;
}

/** The price a `tier` call of a model is billed at, from the model's standard price. */
export function tierPricing(standard: LlmPricing, model: string, tier: LlmTier, opts: TierPricingOptions): LlmPricing {
  if (tier === 'standard') return standard;
  const exact = opts.tierPrices?.[tier]?.[model];
  if (exact) return exact;
  const factor = 1 - (opts.tierDiscount?.[tier] ?? DEFAULT_TIER_DISCOUNT[tier]);
  return { inputPerMillion: standard.inputPerMillion * factor, outputPerMillion: standard.outputPerMillion * factor };
}

export type ServiceTierRequest = { tier: 'standard' | 'flex' } | { error: LlmError };

/**
 * Reads `service_tier` of a chat request. "auto" and "default" are served at standard (the
 * fake's project has no Scale Tier); "scale" and "priority" are real values the fake does not
 * model, refused so a test notices instead of being billed at the wrong price.
 */
export function readServiceTier(value: unknown): ServiceTierRequest {
  if (value === undefined || value === null || value === 'auto' || value === 'default') return { tier: 'standard' };
  if (value === 'flex') return { tier: 'flex' };
  if (value === 'scale' || value === 'priority') {
    return { error: invalidServiceTier(`The fake does not support service_tier '${value}'.`, 'unsupported_value') };
  }
  return {
    error: invalidServiceTier(
      `Invalid value: '${String(value)}'. Supported values are: 'auto', 'default', 'flex', 'scale', and 'priority'.`,
      'invalid_value',
    ),
  };
}

/**
 * A flex request for a model without Flex processing: OpenAI refuses it with a 400 naming
 * `service_tier` (it does not fall back to standard). The wording follows OpenAI's other
 * "Unsupported value" errors; the fake's choice, OpenAI does not document this one.
 */
export function flexUnsupportedError(model: string): LlmError {
  return invalidServiceTier(
    `Unsupported value: 'service_tier' does not support 'flex' with this model (${model}). Flex processing is available for a limited set of models.`,
    'unsupported_value',
  );
}

/** The `code` of a Flex capacity shortage; the one field a client should classify it by. */
export const RESOURCE_UNAVAILABLE_CODE = 'resource_unavailable';

/**
 * OpenAI's "429 Resource Unavailable" for a flex request when Flex capacity is short. OpenAI
 * documents the status and name, not the body: the fake's choice is the usual error envelope
 * with a message saying "Resource Unavailable" and Flex capacity, type
 * `service_unavailable_error`, and the distinct code `resource_unavailable`, so a client can
 * tell it from a rate limit (`rate_limit_exceeded`) and a quota error (`insufficient_quota`).
 * It is not a rate limit: no Retry-After, not billed, not counted in the rpm/tpm windows.
 */
export function flexUnavailableError(model: string): LlmError {
  return {
    status: 429,
    message: `Resource Unavailable: there is not enough Flex processing capacity for ${model} to serve this request right now. Please retry later, or send it without service_tier "flex".`,
    type: 'service_unavailable_error',
    code: RESOURCE_UNAVAILABLE_CODE,
    param: null,
  };
}

function invalidServiceTier(message: string, code: string): LlmError {
  return { status: 400, message, type: 'invalid_request_error', code, param: 'service_tier' };
}
