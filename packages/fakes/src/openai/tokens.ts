import { decode, encode } from 'gpt-tokenizer';

/** A text part of a multi-part message; other part types (images, audio) carry no text tokens here. */
export interface ChatContentPart {
  type: string;
  text?: string;
}

export interface ChatMessageInput {
  role: string;
  content?: string | readonly ChatContentPart[] | null;
}

// Prompts contain scraped web text; treat "<|endoftext|>" and friends as plain text
// like the API does instead of letting the tokenizer throw.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** o200k tokens of a text (gpt-4o / gpt-4.1 / gpt-5 family). */
export function encodeText(text: string): number[] {
  return encode(text, PLAIN_TEXT);
}

export function countTextTokens(text: string): number {
  return encodeText(text).length;
}

/** Text parts of a message's content, in order. */
export function contentTexts(content: ChatMessageInput['content']): string[] {
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) return [];
  const parts: readonly ChatContentPart[] = content;
  return parts.flatMap((p) => (p.type === 'text' && typeof p.text === 'string' ? [p.text] : []));
}

/**
 * Prompt tokens as the fake bills them: per message its content tokens plus 3
 * (message framing), plus 3 priming the reply. This is the OpenAI cookbook
 * count without the role/name tokens; brandq estimates with this same function
 * so its budget reservations match the fake exactly.
 */
export function countChatPromptTokens(messages: readonly ChatMessageInput[]): number {
  let total = 3;
  for (const m of messages) {
    total += 3;
    for (const text of contentTexts(m.content)) total += countTextTokens(text);
  }
  return total;
}

/**
 * Tokens the fake bills for a request's `response_format`: a `json_schema` format costs
 * the tokens of its `json_schema` object as JSON text (name, schema, strict), since the
 * provider puts the schema in front of the model; `json_object`, `text` or none cost 0.
 * Not OpenAI's published formula (there is none): the fake's rule, exported so brandq can
 * count a request exactly as the fake bills it.
 */
export function countResponseFormatTokens(responseFormat: unknown): number {
  if (typeof responseFormat !== 'object' || responseFormat === null) return 0;
  const format = responseFormat as { type?: unknown; json_schema?: unknown };
  if (format.type !== 'json_schema' || format.json_schema === undefined) return 0;
  return countTextTokens(JSON.stringify(format.json_schema));
}

/** Cuts `text` to at most `maxTokens` tokens, as a model stopping at max_tokens would. */
export function truncateToTokens(text: string, maxTokens: number): { text: string; tokens: number; truncated: boolean } {
  const tokens = encodeText(text);
  if (tokens.length <= maxTokens) return { text, tokens: tokens.length, truncated: false };
  const kept = tokens.slice(0, Math.max(0, maxTokens));
  return { text: decode(kept), tokens: kept.length, truncated: true };
}
