import { z } from 'zod';

const MAX_TEXT = 1000;

/** Trims, collapses control characters and caps the length of free text from the model. */
const text = (max: number) =>
  z
    .string()
    .nullable()
    .transform((v) => {
      if (v === null) return null;
      // eslint-disable-next-line no-control-regex
      const cleaned = v.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '').trim();
      if (cleaned === '') return null;
      return cleaned.length > max ? `${cleaned.slice(0, max - 1)}…` : cleaned;
    });

const httpUrl = z
  .string()
  .nullable()
  .transform((v) => {
    if (v === null) return null;
    try {
      const u = new URL(v.trim());
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.toString() : null;
    } catch {
      return null;
    }
  });

/** What the LLM must answer, checked after the fact: the model's word is never trusted as-is. */
export const brandFactsSchema = z.object({
  website: httpUrl,
  category: text(100),
  description: text(MAX_TEXT),
  country: text(100),
  founded_year: z
    .number()
    .int()
    .nullable()
    .transform((y) => (y !== null && y >= 1000 && y <= new Date().getUTCFullYear() ? y : null)),
  // Only web links count as sources: a `javascript:` or `=IMPORTXML(...)` "source" is dropped.
  sources: z
    .array(z.string())
    .max(50)
    .transform((list) => list.filter(isHttpUrl)),
});

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export type BrandFactsAnswer = z.infer<typeof brandFactsSchema>;

/** Bump when the schema or prompt changes meaning: cached answers of older versions are not reused. */
export const BRAND_FACTS_SCHEMA_VERSION = 'brand-facts/1';

/** JSON Schema sent as `response_format` (strict structured output). */
export const brandFactsJsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['website', 'category', 'description', 'country', 'founded_year', 'sources'],
  properties: {
    website: { type: ['string', 'null'], description: 'Official website URL' },
    category: { type: ['string', 'null'], description: 'Product category, a few words' },
    description: { type: ['string', 'null'], description: 'One or two factual sentences' },
    country: { type: ['string', 'null'], description: 'Country of origin' },
    founded_year: { type: ['integer', 'null'] },
    sources: { type: 'array', items: { type: 'string' }, description: 'URLs of the search results used' },
  },
} as const;
