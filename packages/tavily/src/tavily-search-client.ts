import { tavily } from '@tavily/core';
import { captureHttp } from './http-status-capture.js';
import { classifyTavilyError } from './classify-tavily-error.js';

export type SearchDepth = 'basic' | 'advanced' | 'fast' | 'ultra-fast';

export interface TavilySearchOptions {
  apiKey: string | undefined;
  baseUrl: string;
  depth: SearchDepth;
  maxResults: number;
  timeoutSeconds: number;
}

export interface SearchHit {
  title: string;
  url: string;
  content: string;
  score: number;
}

export interface SearchOutcome {
  query: string;
  hits: SearchHit[];
  /** Credits the response reported, else the documented price of the depth used. */
  credits: number;
  creditsReported: boolean;
  headers: Record<string, string>;
}

/** Credits Tavily charges per search when the response does not say. */
export function creditsForDepth(depth: SearchDepth): number {
  return depth === 'advanced' ? 2 : 1;
}

export function searchQueryFor(brand: string, hints: Record<string, string> = {}): string {
  const extra = [hints.country, hints.website].filter(Boolean).join(' ');
  return `${brand} brand company official website${extra ? ` ${extra}` : ''}`;
}

/** Characters of a hit's content kept (the prompt uses fewer). */
export const MAX_HIT_CONTENT = 4000;

function cap(text: unknown, max: number): string {
  const s = typeof text === 'string' ? text : '';
  return s.length > max ? s.slice(0, max) : s;
}

export class TavilySearchClient {
  private readonly client: ReturnType<typeof tavily>;

  constructor(private readonly options: TavilySearchOptions) {
    // The SDK has no retries of its own; the base URL has no env var, so it is passed here.
    this.client = tavily({ apiKey: options.apiKey ?? '', apiBaseURL: options.baseUrl.replace(/\/+$/, '') });
  }

  get depth(): SearchDepth {
    return this.options.depth;
  }

  get maxResults(): number {
    return this.options.maxResults;
  }

  async search(query: string): Promise<SearchOutcome> {
    const { value, error, http } = await captureHttp(() =>
      this.client.search(query, {
        searchDepth: this.options.depth,
        maxResults: this.options.maxResults,
        includeUsage: true,
        timeout: this.options.timeoutSeconds,
      }),
    );
    if (error !== undefined || value === undefined) throw classifyTavilyError(error, http);
    const reported = value.usage?.credits;
    return {
      query,
      // Capped: the prompt uses 1,200 characters of a hit, and a hit is stored in the job's
      // checkpoint and the cache, so a megabyte-long page must not be kept whole.
      hits: value.results.map((r) => ({ title: cap(r.title, 500), url: cap(r.url, 2048), content: cap(r.content, MAX_HIT_CONTENT), score: r.score })),
      credits: typeof reported === 'number' ? reported : creditsForDepth(this.options.depth),
      creditsReported: typeof reported === 'number',
      headers: http.headers ?? {},
    };
  }
}
