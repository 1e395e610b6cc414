/** USD per million tokens: numerically the same as micro-dollars per token. */
export interface TokenPrice {
  inputPerMillion: number;
  outputPerMillion: number;
}

/**
 * How an LLM call is served and billed: `standard` answers at once; OpenAI's `flex`
 * (`service_tier: "flex"`, slower, may be refused for capacity) and `batch` (a JSONL file,
 * results within 24 hours) bill tokens at half the standard price.
 */
export type LlmTier = 'standard' | 'flex' | 'batch';
export const LLM_TIERS: readonly LlmTier[] = ['standard', 'flex', 'batch'];

/** OpenAI bills Flex and Batch tokens at this share of the standard price. */
export const CHEAPER_TIER_FACTOR = 0.5;

/** A model's standard price, and its cheaper tiers' prices where they are not half of it. */
export interface ModelPrice extends TokenPrice {
  tiers?: Partial<Record<Exclude<LlmTier, 'standard'>, TokenPrice>>;
}

/** The price a call of `tier` is billed at. */
export function tierPrice(price: ModelPrice, tier: LlmTier): TokenPrice {
  if (tier === 'standard') return { inputPerMillion: price.inputPerMillion, outputPerMillion: price.outputPerMillion };
  return price.tiers?.[tier] ?? { inputPerMillion: price.inputPerMillion * CHEAPER_TIER_FACTOR, outputPerMillion: price.outputPerMillion * CHEAPER_TIER_FACTOR };
}

export const MICROS_PER_USD = 1_000_000;

export function usdToMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

export function microsToUsd(micros: number): number {
  return micros / MICROS_PER_USD;
}

export function llmCostMicros(price: TokenPrice, inputTokens: number, outputTokens: number): number {
  return Math.round(inputTokens * price.inputPerMillion + outputTokens * price.outputPerMillion);
}

export function tavilyCostMicros(credits: number, usdPerCredit: number): number {
  return Math.round(credits * usdPerCredit * MICROS_PER_USD);
}
