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

/** The broken answers of the `bad-json-content` / `wrong-schema` faults. */
export function badContent(prompt: PromptFacts, variant: BadContentVariant): string {
  const brand = prompt.brand ?? 'unknown';
  if (variant === 'wrong-schema') return JSON.stringify({ brand, website: 42, founded_year: 'long ago' });
  return `Sure! Here is what I found about ${brand}: {"website": "https://`;
}

/** Content plus token accounting, cut at `maxTokens` like a model hitting max_tokens. */
export function completeContent(full: string, maxTokens: number | null): CompletionText {
  if (maxTokens === null) return { content: full, completionTokens: encodeText(full).length, finishReason: 'stop' };
  const cut = truncateToTokens(full, maxTokens);
  return { content: cut.text, completionTokens: cut.tokens, finishReason: cut.truncated ? 'length' : 'stop' };
}
