import { describe, expect, it } from 'vitest';
import { encode } from 'gpt-tokenizer';
import { estimateChatTokens, FALLBACK_TOKENS_PER_CALL } from './token-estimate.js';

describe('estimateChatTokens', () => {
  it('counts the prompt with the o200k tokenizer plus framing and the full output allowance', () => {
    const system = 'You enrich brand records. Answer in JSON.';
    const user = 'Brand: Acme Corp — website, country, category? Résumé: ünïcödé 🚀';
    const expected = encode(system).length + 3 + encode(user).length + 3 + 3 + 600;
    expect(estimateChatTokens([{ content: system }, { content: user }], 600)).toBe(expected);
  });

  it('counts text parts and ignores empty content', () => {
    expect(estimateChatTokens([{ content: [{ type: 'text', text: 'hello' }, { type: 'image_url' }] }, { content: null }], 0)).toBe(
      encode('hello').length + 3 + 3 + 3,
    );
  });

  it('uses the fallback only when the prompt is unknown', () => {
    expect(estimateChatTokens(undefined, 600)).toBe(FALLBACK_TOKENS_PER_CALL);
    expect(estimateChatTokens(undefined, 600, 1234)).toBe(1234);
    expect(estimateChatTokens([], 600)).toBe(603);
  });
});
