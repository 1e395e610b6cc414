import {
  FakeServer,
  type Admission,
  type FakeServerOptions,
  type ProviderCall,
  type RateLimitDecision,
  type Reply,
  type RequestContext,
  type RouteResult,
} from '../server/fake-server.js';
import type { StatusFault } from '../server/faults.js';
import { isRecord } from '../server/http-io.js';
import { attributeBrand, brandFromQuery, expectedSearchResults, MAX_SEARCH_RESULTS, type TavilyResult } from './search-results.js';

export interface FakeTavilyOptions extends FakeServerOptions {
  /** USD per credit (default 0.008, pay-as-you-go). */
  costPerCredit?: number;
  /** Brands to recognise inside queries (ledger `brand`, result URLs). */
  knownBrands?: string[];
  /**
   * Scripted hits: a query mentioning the brand (case-insensitive) gets these results
   * instead of the normal ones, e.g. pages carrying prompt-injection text.
   */
  results?: Record<string, Array<Pick<TavilyResult, 'title' | 'url' | 'content'>>>;
}

export type SearchDepth = 'basic' | 'advanced' | 'fast' | 'ultra-fast';

/** Credits per search: advanced costs 2, every other depth 1. */
export const TAVILY_CREDITS: Record<SearchDepth, number> = { basic: 1, fast: 1, 'ultra-fast': 1, advanced: 2 };

const DEFAULT_RPM = 1000;
const DEFAULT_COST_PER_CREDIT = 0.008;

const STATUS_MESSAGES: Record<number, string> = {
  400: 'Invalid request parameters.',
  401: 'Unauthorized: missing or invalid API key.',
  429: 'Your request has been blocked due to excessive requests. Please reduce rate of requests.',
  432: 'This request exceeds your plan\'s set usage limit. Please upgrade your plan or contact support@tavily.com',
  433: 'This request exceeds the pay-as-you-go limit. You can increase your limit on the Tavily dashboard.',
  500: 'Internal Server Error',
};

interface SearchCall extends ProviderCall {
  query: string;
  depth: SearchDepth;
  maxResults: number;
  includeAnswer: boolean;
  includeUsage: boolean;
  includeRawContent: boolean;
}

function detail(status: number, message: string, errorCode?: string): Reply {
  return { status, body: { detail: { error: message } }, ...(errorCode ? { errorCode } : {}) };
}

function isDepth(value: unknown): value is SearchDepth {
  return value === 'basic' || value === 'advanced' || value === 'fast' || value === 'ultra-fast';
}

/** Tavily `POST /search`. */
export class FakeTavilyServer extends FakeServer<FakeTavilyOptions, SearchCall> {
  constructor(options: FakeTavilyOptions = {}) {
    super('tavily', options);
  }

  protected override matchesBrand(subject: string, brand: string): boolean {
    return subject.toLowerCase().includes(brand.toLowerCase());
  }

  /** apiBaseURL for @tavily/core (no trailing slash: the SDK appends `/search`). */
  get url(): string {
    return this.origin;
  }

  protected authorize(ctx: RequestContext): Reply | null {
    const header = ctx.headers.authorization ?? '';
    const key = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
    const expected = this.options.apiKey;
    if (key === '' || (expected !== undefined && key !== expected)) {
      return detail(401, STATUS_MESSAGES[401] ?? 'Unauthorized', 'unauthorized');
    }
    return null;
  }

  protected route(ctx: RequestContext): RouteResult<SearchCall> {
    if (ctx.method !== 'POST' || ctx.url.pathname !== '/search') {
      return { reply: { status: 404, body: { detail: 'Not Found' } } };
    }
    const body = ctx.body;
    if (ctx.bodyInvalid || !isRecord(body)) return { reply: detail(400, 'Invalid JSON body.') };
    const query = body['query'];
    if (typeof query !== 'string' || query.trim() === '') return { reply: detail(400, 'Query is missing.') };
    ctx.entry.query = query;
    const depth = body['search_depth'] ?? 'basic';
    if (!isDepth(depth)) {
      return { reply: detail(400, "Invalid search depth. Must be 'basic', 'advanced', 'fast' or 'ultra-fast'.") };
    }
    ctx.entry.searchDepth = depth;
    const maxResults = body['max_results'] ?? MAX_SEARCH_RESULTS;
    if (typeof maxResults !== 'number' || !Number.isInteger(maxResults) || maxResults < 0 || maxResults > 20) {
      return { reply: detail(400, 'max_results must be an integer between 0 and 20.') };
    }
    return {
      call: {
        subject: query,
        brand: attributeBrand(query, this.options.knownBrands),
        query,
        depth,
        maxResults,
        includeAnswer: body['include_answer'] === true || body['include_answer'] === 'basic' || body['include_answer'] === 'advanced',
        includeUsage: body['include_usage'] === true,
        includeRawContent: body['include_raw_content'] === true || body['include_raw_content'] === 'markdown' || body['include_raw_content'] === 'text',
      },
    };
  }

  protected admission(): Admission {
    return { bucket: 'default', rpm: this.options.rpm ?? DEFAULT_RPM };
  }

  protected serve(call: SearchCall, ctx: RequestContext): Reply {
    const { entry } = ctx;
    const credits = TAVILY_CREDITS[call.depth];
    // Billing does not depend on include_usage: Tavily charges either way.
    entry.credits = credits;
    entry.costMicros = Math.round(credits * (this.options.costPerCredit ?? DEFAULT_COST_PER_CREDIT) * 1_000_000);
    const results = (this.scriptedResults(call) ?? expectedSearchResults(call.query, {
      maxResults: call.maxResults,
      ...(this.options.knownBrands ? { knownBrands: this.options.knownBrands } : {}),
    })).map((r) => (call.includeRawContent ? { ...r, raw_content: `${r.title}\n\n${r.content}` } : r));
    const name = brandFromQuery(call.query, this.options.knownBrands) ?? call.query.trim();
    return {
      status: 200,
      body: {
        query: call.query,
        follow_up_questions: null,
        answer: call.includeAnswer ? (results[0]?.content ?? `No information about ${name}.`) : null,
        images: [],
        results,
        response_time: Number(((Date.now() - entry.at) / 1000).toFixed(2)),
        ...(call.includeUsage ? { usage: { credits } } : {}),
        request_id: `fake-${entry.id}`,
      },
    };
  }

  private scriptedResults(call: SearchCall): TavilyResult[] | undefined {
    const query = call.query.toLowerCase();
    const brand = Object.keys(this.options.results ?? {})
      .filter((b) => query.includes(b.toLowerCase()))
      .sort((a, b) => b.length - a.length)[0];
    const hits = brand === undefined ? undefined : this.options.results?.[brand];
    return hits?.slice(0, call.maxResults).map((h, i) => ({ ...h, score: Number((0.9 - i * 0.1).toFixed(3)), raw_content: null }));
  }

  protected statusFaultReply(fault: StatusFault): Reply {
    return detail(fault.status, fault.message ?? STATUS_MESSAGES[fault.status] ?? `Injected fault: HTTP ${fault.status}.`, fault.code);
  }

  protected rateLimitReply(_d: RateLimitDecision): Reply {
    return detail(429, STATUS_MESSAGES[429] ?? 'Too Many Requests', 'rate_limit_exceeded');
  }
}
