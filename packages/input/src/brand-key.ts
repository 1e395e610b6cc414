import { createHash } from 'node:crypto';
import { stripInvisibleFormatting } from './unicode-text.js';

/**
 * The identity of a brand: what two spellings of the same name have in common. NFKC folds
 * full-width and compatibility forms ("Ａｃｍｅ" -> "Acme"); `toLowerCase` (not
 * `toLocaleLowerCase`) so a Turkish-locale machine computes the same key as any other;
 * NFKC again because lowercasing can produce unnormalized sequences.
 */
export function normalizeBrandName(name: string): string {
  const folded = stripInvisibleFormatting(name.normalize('NFKC')).trim().replace(/\s+/g, ' ');
  return folded.toLowerCase().normalize('NFKC');
}

const SLUG_MAX_LENGTH = 32;
const HASH_HEX_LENGTH = 12;

/** Letters NFKD does not decompose into ASCII, spelled the way people transliterate them. */
const ASCII_SPELLING: Record<string, string> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  đ: 'd',
  ð: 'd',
  ł: 'l',
  þ: 'th',
  ı: 'i',
};

function readableSlug(normalizedName: string): string {
  const ascii = normalizedName
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[ßæœøđðłþı]/g, (letter) => ASCII_SPELLING[letter] ?? '');
  return ascii
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, SLUG_MAX_LENGTH)
    .replace(/-+$/, '');
}

/**
 * Key for dedup, job ids and Redis hash fields: `<slug>-<12 hex of sha256>`, e.g.
 * `nike-3f2a9c1b0d4e`. The slug is only there for people reading Bull Board; the hash of
 * the normalized name is the identity. The result uses only `[a-z0-9-]`, is at most 45
 * characters, always contains a `-` (so never all digits, which BullMQ reserves) and never
 * a `:` (Redis key separator). Names with no Latin letters (Arabic, CJK, emoji) get the
 * slug `brand`.
 */
export function normalizeBrandKey(name: string): string {
  const normalized = normalizeBrandName(name);
  const hash = createHash('sha256').update(normalized, 'utf8').digest('hex').slice(0, HASH_HEX_LENGTH);
  return `${readableSlug(normalized) || 'brand'}-${hash}`;
}
