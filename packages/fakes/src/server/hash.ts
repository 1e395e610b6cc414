/** FNV-1a 32-bit: tiny, stable across runs and platforms, good enough to spread names over lists. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Picks a stable element of a non-empty list for `key`; `salt` decorrelates different fields of one key. */
export function pick<T>(list: readonly [T, ...T[]], key: string, salt: string): T {
  const item = list[fnv1a(`${salt}|${key}`) % list.length];
  // Modulo keeps the index in range; the fallback only satisfies noUncheckedIndexedAccess.
  return item ?? list[0];
}

/** URL-safe slug of a name: "Café Müller & Co" -> "cafe-muller-co". Falls back to a hash for names with no ASCII letters. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.length > 0 ? slug : `brand-${fnv1a(name).toString(16)}`;
}
