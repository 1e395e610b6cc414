export { LlmClient, LlmBadAnswer, requestPromptTokens, chatRequestBody, answerOf } from './llm-client.js';
export type { LlmClientOptions, LlmUsage, LlmAnswer, LlmRequest, JsonSchemaFormat } from './llm-client.js';
export { classifyLlmError } from './classify-llm-error.js';
export { countPromptTokens, loadTokenizer } from './token-count.js';
export { resolveModelPrice } from './model-price.js';
export type { ModelPriceSource } from './model-price.js';
export { ModelPrices } from './model-prices.js';
