export { LlmClient, LlmBadAnswer } from './llm-client.js';
export type { LlmClientOptions, LlmUsage, LlmAnswer } from './llm-client.js';
export { buildBrandPrompt } from './prompt.js';
export type { PromptHit } from './prompt.js';
export { brandFactsSchema, brandFactsJsonSchema } from './brand-facts-schema.js';
export type { BrandFactsAnswer } from './brand-facts-schema.js';
export { classifyLlmError } from './classify-llm-error.js';
export { countPromptTokens, estimateCallTokens } from './token-count.js';
