import { contentTexts, type ChatMessageInput } from './tokens.js';

/** The most source URLs the fake LLM cites. */
export const MAX_SOURCES = 5;

export interface PromptFacts {
  brand: string | null;
  urls: string[];
}

const BRAND_PREFIX = 'Brand: ';
const URL_PREFIX = 'URL: ';

/**
 * The prompt contract: in the last user message, the first line starting with
 * `Brand: ` names the brand (rest of the line, trimmed) and lines starting with
 * `URL: ` list sources (first 5 distinct ones are cited).
 */
export function readPrompt(messages: readonly ChatMessageInput[]): PromptFacts {
  const lines = lastUserText(messages).split(/\r?\n/);
  let brand: string | null = null;
  const urls: string[] = [];
  for (const line of lines) {
    if (brand === null && line.startsWith(BRAND_PREFIX)) {
      const name = line.slice(BRAND_PREFIX.length).trim();
      if (name !== '') brand = name;
    } else if (line.startsWith(URL_PREFIX)) {
      const url = line.slice(URL_PREFIX.length).trim();
      if (url !== '' && !urls.includes(url) && urls.length < MAX_SOURCES) urls.push(url);
    }
  }
  return { brand, urls };
}

/** The text of the last user message (its text parts joined by newlines), '' when there is none. */
export function lastUserText(messages: readonly ChatMessageInput[]): string {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  return lastUser ? contentTexts(lastUser.content).join('\n') : '';
}
