import { expectedFacts } from './facts.js';
import type { PromptFacts } from './prompt.js';
import { encodeText, truncateToTokens } from './tokens.js';

export type BadContentVariant = 'not-json' | 'wrong-schema';

export interface CompletionText {
  content: string;
  completionTokens: number;
  finishReason: 'stop' | 'length';
}

/** The exact assistant content the fake answers for a prompt. */
export function expectedContent(prompt: PromptFacts): string {
  if (prompt.brand === null) return JSON.stringify({ error: 'no brand' });
  return JSON.stringify({ ...expectedFacts(prompt.brand), sources: prompt.urls });
}

function badContent(prompt: PromptFacts, variant: BadContentVariant): string {
  const brand = prompt.brand ?? 'unknown';
  if (variant === 'wrong-schema') return JSON.stringify({ brand, website: 42, founded_year: 'long ago' });
  return `Sure! Here is what I found about ${brand}: {"website": "https://`;
}

/** Content plus token accounting, cut at `maxTokens` like a model hitting max_tokens. */
export function completeText(prompt: PromptFacts, maxTokens: number | null, variant?: BadContentVariant): CompletionText {
  return completeContent(variant ? badContent(prompt, variant) : expectedContent(prompt), maxTokens);
}

/** Any content (e.g. a scripted answer) with the same token accounting and max_tokens cut. */
export function completeContent(full: string, maxTokens: number | null): CompletionText {
  if (maxTokens === null) return { content: full, completionTokens: encodeText(full).length, finishReason: 'stop' };
  const cut = truncateToTokens(full, maxTokens);
  return { content: cut.text, completionTokens: cut.tokens, finishReason: cut.truncated ? 'length' : 'stop' };
}
