import { describe, expect, it } from 'vitest';
import { normalizeBrandKey, normalizeBrandName } from './brand-key.js';

describe('normalizeBrandKey', () => {
  it('is a readable slug plus 12 hex characters of a hash', () => {
    expect(normalizeBrandKey('Nike')).toMatch(/^nike-[0-9a-f]{12}$/);
    expect(normalizeBrandKey('Procter & Gamble, Co.')).toMatch(/^procter-gamble-co-[0-9a-f]{12}$/);
  });

  it('is deterministic', () => {
    expect(normalizeBrandKey('Nike')).toBe(normalizeBrandKey('Nike'));
    // sha256('nike'). Pinned so a change to the normalization (which would re-key every stored run) is noticed.
    expect(normalizeBrandKey('Nike')).toBe('nike-5dd95c98aff2');
  });

  it('gives the same key to names differing only in case, whitespace or Unicode form', () => {
    const acme = normalizeBrandKey('Acme');
    expect(normalizeBrandKey('ACME')).toBe(acme);
    expect(normalizeBrandKey('  acme \t')).toBe(acme);
    expect(normalizeBrandKey('Ａｃｍｅ')).toBe(acme); // full-width, folded by NFKC
    expect(normalizeBrandKey('Acme\u200B')).toBe(acme); // zero-width space
    expect(normalizeBrandKey('Blue   Bottle\u00A0Coffee')).toBe(normalizeBrandKey('blue bottle coffee'));
    expect(normalizeBrandKey('Cafe\u0301')).toBe(normalizeBrandKey('Café')); // decomposed vs composed
  });

  it('gives different keys to different names, even when their slugs match', () => {
    expect(normalizeBrandKey('Nike')).not.toBe(normalizeBrandKey('Nikes'));
    expect(normalizeBrandKey('H&M')).not.toBe(normalizeBrandKey('H M'));
    expect(normalizeBrandKey('H&M').slice(0, 4)).toBe(normalizeBrandKey('H M').slice(0, 4));
  });

  it("lower-cases without locale rules ('I' becomes 'i', never Turkish dotless 'ı')", () => {
    expect(normalizeBrandKey('INDIGO')).toBe(normalizeBrandKey('indigo'));
    expect(normalizeBrandName('INDIGO')).toBe('indigo');
  });

  it('is safe as a BullMQ job id and Redis key fragment for any name', () => {
    const names = ['12345', '3M', 'a:b', 'مطعم الشام', '🍕', '東京', 'Straße', 'x'.repeat(300), '', '{brandq}'];
    for (const name of names) {
      const key = normalizeBrandKey(name);
      expect(key).toMatch(/^[a-z0-9-]{1,45}$/);
      expect(key).not.toMatch(/^\d+$/);
      expect(key).not.toContain(':');
    }
  });

  it('falls back to the slug "brand" for names without Latin letters, and transliterates common ones', () => {
    expect(normalizeBrandKey('مطعم الشام')).toMatch(/^brand-[0-9a-f]{12}$/);
    expect(normalizeBrandKey('12345')).toMatch(/^12345-[0-9a-f]{12}$/);
    expect(normalizeBrandKey('Straße Café')).toMatch(/^strasse-cafe-[0-9a-f]{12}$/);
  });
});

describe('normalizeBrandName', () => {
  it('is NFKC, trimmed, whitespace-collapsed and lower-cased', () => {
    expect(normalizeBrandName('  Ａｃｍｅ   Corp\n')).toBe('acme corp');
  });
});
