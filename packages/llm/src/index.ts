export { LlmClient, LlmBadAnswer } from './llm-client.js';
export type { LlmClientOptions, LlmUsage, LlmAnswer } from './llm-client.js';
export { buildBrandPrompt } from './prompt.js';
export type { PromptHit } from './prompt.js';
export { brandFactsSchema, brandFactsJsonSchema, BRAND_FACTS_SCHEMA_VERSION } from './brand-facts-schema.js';
export type { BrandFactsAnswer } from './brand-facts-schema.js';
export { classifyLlmError } from './classify-llm-error.js';
export { countPromptTokens, estimateCallTokens } from './token-count.js';
