import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { countChatPromptTokens } from '@brandq/fakes';
import { countPromptTokens } from './token-count.js';

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('../', import.meta.url));

/** Text a prompt can carry: scraped pages in any script, markup, numbers, and the tokenizer's own special tokens. */
const CORPUS = [
  '',
  'Acme Corporation makes running shoes in Portland, Oregon, founded 1972.',
  'Société Générale, Müller & Söhne GmbH, Ærøskøbing, Łódź, İstanbul, naïve café',
  '日本語のテキストと中文字符，한국어 문장입니다。',
  'Русский текст и ελληνικά γράμματα',
  'العربية من اليمين إلى اليسار עברית',
  'हिन्दी और தமிழ் எழுத்துகள்',
  'emoji 🚀🎉 family 👩‍👩‍👧‍👦 flags 🇫🇷🇯🇵 skin 👍🏽 keycap 1️⃣',
  'combining e\u0301 a\u0308 o\u0302 and a lone surrogate \ud800 here',
  'special tokens as text: <|endoftext|> <|im_start|>user<|im_end|> <|endofprompt|>',
  '   leading spaces, tabs\t\tand\nnew\r\nlines\n\n\n   ',
  '3.14159 1,000,000 2024-11-22T08:55:33Z 0xDEADBEEF 1e-9 ١٢٣',
  '<div class="hero"><a href="https://example.com/path?q=1&amp;r=2#x">Shop</a></div>',
  '{"name":"brand_facts","schema":{"type":"object","properties":{"category":{"type":"string"}}},"strict":true}',
  'function f(x) { return x => x ** 2 }; // comment\n\tconst y = `template ${x}`;',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  Array.from({ length: 400 }, (_, i) => `${['brand', 'Ünïcödé', '品牌', '🚀', 'https://x.y/z', String(i)][i % 6]}${i % 7 ? ' ' : '\n'}`).join(''),
];

describe('countPromptTokens', () => {
  it.each(CORPUS.map((text, i) => [i, text]))('counts text %i exactly as the fake provider bills it', (_i, text) => {
    const messages = [{ role: 'user' as const, content: text }];
    expect(countPromptTokens(messages)).toBe(countChatPromptTokens(messages));
  });

  it('counts a whole conversation as the fake provider bills it', () => {
    const messages = CORPUS.map((content, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content }));
    expect(countPromptTokens(messages)).toBe(countChatPromptTokens(messages));
  });

  it('counts special-token text in scraped content as plain text instead of throwing', () => {
    const messages = [{ role: 'user' as const, content: 'page text <|endoftext|> more' }];
    expect(countPromptTokens(messages)).toBe(countChatPromptTokens(messages));
  });

  it('loads the tokenizer on the first count, not when the package is imported', async () => {
    const script = `
      import { createRequire } from 'node:module';
      const loaded = () => Object.keys(createRequire(process.cwd() + '/').cache).some((path) => path.includes('gpt-tokenizer'));
      const llm = await import(${JSON.stringify(new URL('./index.ts', import.meta.url).href)});
      const atImport = loaded();
      llm.countPromptTokens([{ role: 'user', content: 'hello' }]);
      process.stdout.write(JSON.stringify({ atImport, afterCount: loaded() }));
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--conditions=@brandq/source', '--input-type=module', '-e', script], { cwd: packageDir });
    expect(JSON.parse(stdout)).toEqual({ atImport: false, afterCount: true });
  });
});
