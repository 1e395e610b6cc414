import { fnv1a, pick, slugify } from '../server/hash.js';

/** What the fake LLM "knows" about a brand; brandq's output should equal this. */
export interface BrandFacts {
  website: string | null;
  category: string | null;
  description: string | null;
  country: string | null;
  founded_year: number | null;
}

const CATEGORIES = [
  'apparel',
  'beauty',
  'beverages',
  'consumer electronics',
  'food',
  'furniture',
  'home goods',
  'jewelry',
  'outdoor gear',
  'personal care',
  'pet supplies',
  'software',
  'sporting goods',
  'toys',
  'travel',
] as const;

const COUNTRIES = [
  'United States',
  'United Kingdom',
  'Germany',
  'France',
  'Italy',
  'Japan',
  'South Korea',
  'Canada',
  'Australia',
  'Sweden',
  'Netherlands',
  'Spain',
  'Brazil',
  'India',
  'Switzerland',
  'Denmark',
] as const;

/**
 * Deterministic facts for a brand name. About one brand in ten has an unknown
 * founding year (null) so the system's handling of missing facts gets exercised.
 */
export function expectedFacts(brand: string): BrandFacts {
  const category = pick(CATEGORIES, brand, 'category');
  const country = pick(COUNTRIES, brand, 'country');
  const yearHash = fnv1a(`founded|${brand}`);
  return {
    website: `https://${slugify(brand)}.example.com`,
    category,
    description: `${brand} is a ${category} brand from ${country}.`,
    country,
    founded_year: yearHash % 10 === 0 ? null : 1900 + (yearHash % 121),
  };
}
