import { createRequire } from 'node:module';
import type { countTokens } from 'gpt-tokenizer';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';

// Prompts contain scraped web text: "<|endoftext|>" and friends count as plain text, as the
// API bills them, instead of making the tokenizer throw.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

let o200kCount: typeof countTokens | undefined;

/**
 * o200k tokens of a text (gpt-4o / gpt-4.1 / gpt-5 family). The tokenizer is loaded on the
 * first count, not at import: its ranks cost a process about 50 MB of RSS and most of a
 * second, and the producer CLI and the board import this package (through the preflight)
 * without ever counting. `require` keeps the count synchronous.
 */
function textTokens(text: string): number {
  return loadTokenizer()(text, PLAIN_TEXT);
}

/**
 * Loads the tokenizer now. A worker does so before it takes jobs: loading blocks the event
 * loop for most of a second, and in the middle of a run that would hold back requests other
 * jobs of the process had already been admitted to send (they would land late, inside a
 * cooldown a 429 announced meanwhile).
 */
export function loadTokenizer(): typeof countTokens {
  o200kCount ??= (createRequire(import.meta.url)('gpt-tokenizer') as { countTokens: typeof countTokens }).countTokens;
  return o200kCount;
}

/**
 * Prompt tokens of a chat request, counted the way OpenAI bills them for the o200k
 * models: each message costs its content plus 3 framing tokens, plus 3 to prime the reply.
 */
export function countPromptTokens(messages: readonly ChatCompletionMessageParam[]): number {
  let total = 3;
  for (const message of messages) {
    const content = typeof message.content === 'string' ? message.content : JSON.stringify(message.content ?? '');
    total += textTokens(content) + 3;
  }
  return total;
}

/**
 * Tokens a structured-output schema adds to the prompt: providers bill the `response_format`
 * schema as input, so a count without it is below the bill on every call.
 */
export function countSchemaTokens(schema: unknown): number {
  return textTokens(JSON.stringify(schema)) + 3;
}
