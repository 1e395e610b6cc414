/**
 * Character classes brand names and cells are checked against. Kept in one place so the
 * key, the row validation and the cell neutralizer agree on what "invisible" and
 * "control" mean.
 */

/**
 * Invisible formatting characters that change neither what a name says nor how it reads:
 * zero-width space, word joiner, BOM, soft hyphen, and the bidi marks, embeddings,
 * overrides and isolates. They sneak in from copy-paste and would make "Acme" and
 * "Acme\u200B" two brands; overrides can also make a name display as something else.
 * Zero-width joiner/non-joiner (U+200D, U+200C) are deliberately kept: emoji sequences and
 * Persian/Indic scripts need them.
 */
const INVISIBLE_FORMATTING = /[\u00AD\u061C\u200B\u200E\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]/g;

/** C0 controls, DEL and C1 controls. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001F\u007F-\u009F]/;

export function stripInvisibleFormatting(text: string): string {
  return text.replace(INVISIBLE_FORMATTING, '');
}

/** The first C0/C1 control character in `text`, if any. */
export function findControlCharacter(text: string): string | undefined {
  return CONTROL_CHARACTER.exec(text)?.[0];
}

/** `U+0007`: how a character is named in messages, since control characters print as nothing. */
export function codePointLabel(character: string): string {
  const codePoint = character.codePointAt(0) ?? 0;
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Length as a person counts characters: an emoji or an astral CJK character is one, not two. */
export function codePointLength(text: string): number {
  let length = 0;
  for (const _ of text) length += 1;
  return length;
}
