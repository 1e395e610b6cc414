export { startFakeOpenAI, startFakeTavily, startFakeSheets, startFakes, type Fakes, type FakesOptions } from './start.js';
export type { FakeOpenAIServer, FakeOpenAIOptions, LlmPricing } from './openai/fake-openai.js';
export type { FakeTavilyServer, FakeTavilyOptions, SearchDepth } from './tavily/fake-tavily.js';
export type { FakeSheetsServer, FakeSheetsOptions } from './sheets/fake-sheets.js';
export type { FakeServerOptions } from './server/fake-server.js';
export type { RetryAfterMode } from './server/retry-headers.js';
export type { Fault, FaultRates, StatusFault } from './server/faults.js';
export {
  Ledger,
  type BatchStatus,
  type LedgerBatch,
  type LedgerEntry,
  type LedgerSummary,
  type SheetWrite,
  type TierTotals,
} from './server/ledger.js';
export {
  BATCH_ENDPOINT,
  DEFAULT_BATCH_DELAY_MS,
  DEFAULT_BATCH_ENQUEUED_TOKEN_LIMIT,
  DEFAULT_BATCH_MAX_BYTES,
  DEFAULT_BATCH_MAX_REQUESTS,
  type BatchExpiry,
  type BatchLineFailure,
  type BatchOptions,
} from './openai/batches.js';
export {
  DEFAULT_FLEX_MODELS,
  DEFAULT_TIER_DISCOUNT,
  LLM_TIERS,
  RESOURCE_UNAVAILABLE_CODE,
  tierPricing,
  type CheaperTier,
  type LlmTier,
  type TierPricingOptions,
} from './openai/tiers.js';
export { RemoteFake } from './remote.js';

// Ground truth the system's tests compare brandq's output and accounting against.
export { expectedFacts, type BrandFacts } from './openai/facts.js';
export { expectedContent } from './openai/completion.js';
export { expectedAnswer } from './openai/schema-answer.js';
export { countChatPromptTokens, type ChatMessageInput } from './openai/tokens.js';
export { llmCostMicros, DEFAULT_LLM_PRICING } from './openai/fake-openai.js';
export { expectedSearchResults, brandFromQuery, type TavilyResult } from './tavily/search-results.js';
export { TAVILY_CREDITS } from './tavily/fake-tavily.js';
