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

/** Worst case a call can use: the counted prompt plus the output cap the request sets. */
export function estimateCallTokens(messages: readonly ChatCompletionMessageParam[], maxOutputTokens: number): number {
  return countPromptTokens(messages) + maxOutputTokens;
}
