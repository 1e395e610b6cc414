import { expectedFacts } from '../openai/facts.js';
import { fnv1a, slugify } from '../server/hash.js';

/** A search hit in Tavily's wire shape. */
export interface TavilyResult {
  title: string;
  url: string;
  content: string;
  score: number;
  raw_content: string | null;
}

export interface SearchResultOptions {
  /** Tavily's max_results (default 5; the fake never has more than 5 hits). */
  maxResults?: number;
  /** Brands to look for in the query; the longest one found wins. */
  knownBrands?: readonly string[];
}

export const MAX_SEARCH_RESULTS = 5;

/**
 * The brand a query is about: the longest known brand it mentions, else the
 * first double-quoted text, else null (results then describe the whole query).
 */
export function brandFromQuery(query: string, knownBrands: readonly string[] = []): string | null {
  const lower = query.toLowerCase();
  let best: string | null = null;
  for (const b of knownBrands) {
    if (b !== '' && lower.includes(b.toLowerCase()) && (best === null || b.length > best.length)) best = b;
  }
  if (best !== null) return best;
  const quoted = /["“]([^"”]+)["”]/.exec(query);
  const inQuotes = quoted?.[1]?.trim();
  return inQuotes !== undefined && inQuotes !== '' ? inQuotes : null;
}

/** How brandq phrases its searches (the search step of the default recipe, packages/recipe/recipes/brand-facts.yaml): `<brand> brand company official website ...`. */
const BRANDQ_QUERY_MARKER = ' brand company official website';

/**
 * The brand the ledger attributes a search to: brandFromQuery, else the text before
 * brandq's query marker, so paid searches can be counted per brand without `knownBrands`.
 * Results are still built from brandFromQuery alone, so attribution never changes an answer.
 */
export function attributeBrand(query: string, knownBrands: readonly string[] = []): string | null {
  const found = brandFromQuery(query, knownBrands);
  if (found !== null) return found;
  const marker = query.indexOf(BRANDQ_QUERY_MARKER);
  const before = marker > 0 ? query.slice(0, marker).trim() : '';
  return before === '' ? null : before;
}

/** Deterministic hits for a query; the text repeats expectedFacts so an LLM could extract them. */
export function expectedSearchResults(query: string, opts: SearchResultOptions = {}): TavilyResult[] {
  const name = brandFromQuery(query, opts.knownBrands) ?? query.trim();
  const slug = slugify(name);
  const facts = expectedFacts(name);
  const jitter = (fnv1a(`score|${query}`) % 50) / 1000;
  const hits: Array<Omit<TavilyResult, 'score' | 'raw_content'>> = [
    {
      title: `About ${name}`,
      url: `https://${slug}.example.com/about`,
      content: `${facts.description ?? name} Official website: ${facts.website ?? 'unknown'}.`,
    },
    {
      title: `${name} - latest news`,
      url: `https://news.example.org/${slug}`,
      content: `News coverage of ${name}, a ${facts.category ?? 'consumer'} company based in ${facts.country ?? 'an unknown country'}.`,
    },
    {
      title: `${name} - Wiki`,
      url: `https://wiki.example.org/${slug}`,
      content: `${name} was founded in ${facts.founded_year ?? 'an unknown year'} and operates in ${facts.country ?? 'several countries'}.`,
    },
    {
      title: `Shop ${name}`,
      url: `https://shop.example.net/brands/${slug}`,
      content: `Buy ${name} ${facts.category ?? 'products'} online.`,
    },
    {
      title: `${name} review`,
      url: `https://reviews.example.net/${slug}-review`,
      content: `An independent review of ${name}.`,
    },
  ];
  const limit = Math.max(0, Math.min(MAX_SEARCH_RESULTS, opts.maxResults ?? MAX_SEARCH_RESULTS));
  return hits.slice(0, limit).map((h, i) => ({ ...h, score: Number((0.95 - i * 0.1 - jitter).toFixed(3)), raw_content: null }));
}
