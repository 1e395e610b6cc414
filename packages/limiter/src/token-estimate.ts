import { countTokens } from 'gpt-tokenizer';

/** Text parts of a chat message; non-text parts (images) are not counted here. */
export interface ChatMessageLike {
  content?: string | null | ReadonlyArray<{ type?: string; text?: string }>;
}

/** Reservation when the prompt is not known at all (OPENAI_EST_TOKENS_PER_RUN). */
export const FALLBACK_TOKENS_PER_CALL = 7000;

function text(content: ChatMessageLike['content']): string {
  if (typeof content === 'string') return content;
  if (!content) return '';
  return content.map((part) => part.text ?? '').join('');
}

/**
 * Worst-case tokens of one chat call, to reserve before it: the prompt counted with the
 * o200k tokenizer (3 tokens of framing per message, 3 to prime the reply, as OpenAI counts
 * them) plus every output token the call may produce. The fallback is used only when the
 * prompt is unknown, never instead of counting a known one.
 */
export function estimateChatTokens(
  messages: readonly ChatMessageLike[] | undefined,
  maxOutputTokens: number,
  fallbackTokens: number = FALLBACK_TOKENS_PER_CALL,
): number {
  if (messages === undefined) return fallbackTokens;
  let prompt = 3;
  for (const message of messages) prompt += countTokens(text(message.content)) + 3;
  return prompt + Math.max(0, Math.ceil(maxOutputTokens));
}
