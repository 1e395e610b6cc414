/** USD per million tokens: numerically the same as micro-dollars per token. */
export interface ModelPrice {
  inputPerMillion: number;
  outputPerMillion: number;
}

export const MICROS_PER_USD = 1_000_000;

export function usdToMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

export function microsToUsd(micros: number): number {
  return micros / MICROS_PER_USD;
}

export function llmCostMicros(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  return Math.round(inputTokens * price.inputPerMillion + outputTokens * price.outputPerMillion);
}

export function tavilyCostMicros(credits: number, usdPerCredit: number): number {
  return Math.round(credits * usdPerCredit * MICROS_PER_USD);
}
