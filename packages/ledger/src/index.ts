export { CostLedger, BUDGET_EPOCH_FIELD } from './cost-ledger.js';
export type { Reservation, CallUsage, SettleResult, LedgerSnapshot, StepTotals, ProviderTotals, PaidProvider, BookingRetryListener } from './cost-ledger.js';
export { formatCostSummary, llmLabelFor } from './cost-summary.js';
export type { SummaryStep } from './cost-summary.js';
export { llmCostMicros, tavilyCostMicros, usdToMicros, microsToUsd, MICROS_PER_USD, tierPrice, LLM_TIERS, CHEAPER_TIER_FACTOR } from './pricing.js';
export type { ModelPrice, TokenPrice, LlmTier } from './pricing.js';
