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

/** What one search asks for beyond its query; unset options take the client's defaults. */
export interface SearchRequest {
  depth?: SearchDepth | undefined;
  maxResults?: number | undefined;
  includeDomains?: readonly string[] | undefined;
  excludeDomains?: readonly string[] | undefined;
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

  async search(query: string, request: SearchRequest = {}): Promise<SearchOutcome> {
    const resolved = { ...request, depth: request.depth ?? this.options.depth, maxResults: request.maxResults ?? this.options.maxResults };
    const { value, error, http } = await captureHttp(() =>
      this.client.search(query, {
        searchDepth: resolved.depth,
        maxResults: resolved.maxResults,
        ...(resolved.includeDomains?.length ? { includeDomains: [...resolved.includeDomains] } : {}),
        ...(resolved.excludeDomains?.length ? { excludeDomains: [...resolved.excludeDomains] } : {}),
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
      credits: typeof reported === 'number' ? reported : creditsForDepth(resolved.depth),
      creditsReported: typeof reported === 'number',
      headers: http.headers ?? {},
    };
  }
}
