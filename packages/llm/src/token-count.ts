import { encode } from 'gpt-tokenizer';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';

/**
 * Prompt tokens of a chat request, counted the way OpenAI bills them for the o200k
 * models: each message costs its content plus 3 framing tokens, plus 3 to prime the reply.
 */
export function countPromptTokens(messages: readonly ChatCompletionMessageParam[]): number {
  let total = 3;
  for (const message of messages) {
    const content = typeof message.content === 'string' ? message.content : JSON.stringify(message.content ?? '');
    total += encode(content).length + 3;
  }
  return total;
}

/**
 * Tokens a structured-output schema adds to the prompt: providers bill the `response_format`
 * schema as input, so a count without it is below the bill on every call.
 */
export function countSchemaTokens(schema: unknown): number {
  return encode(JSON.stringify(schema)).length + 3;
}

/** Worst case a call can use: the counted prompt plus the output cap the request sets. */
export function estimateCallTokens(messages: readonly ChatCompletionMessageParam[], maxOutputTokens: number): number {
  return countPromptTokens(messages) + maxOutputTokens;
}
