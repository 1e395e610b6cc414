import { cacheKeyOf } from '@brandq/cache';
import type { Config } from '@brandq/config';
import type { JsonSchemaFormat, LlmRequest } from '@brandq/llm';
import { RECIPE_SEMANTICS, renderMessages, renderQuery, responseFormatOf, shownUrls, type LlmStep, type SearchStep, type TemplateContext } from '@brandq/recipe';
import { creditsForDepth, type SearchDepth, type SearchRequest } from '@brandq/tavily';

/** What a step leaves unset, taken from the fleet's configuration. */
export interface StepDefaults {
  searchDepth: SearchDepth;
  searchMaxResults: number;
  model: string;
  maxOutputTokens: number;
}

/** The defaults a fleet's configuration gives every step, derived once for workers and estimates alike. */
export function stepDefaultsOf(config: Pick<Config, 'TAVILY_SEARCH_DEPTH' | 'TAVILY_MAX_RESULTS' | 'OPENAI_MODEL' | 'OPENAI_MAX_OUTPUT_TOKENS'>): StepDefaults {
  return { searchDepth: config.TAVILY_SEARCH_DEPTH, searchMaxResults: config.TAVILY_MAX_RESULTS, model: config.OPENAI_MODEL, maxOutputTokens: config.OPENAI_MAX_OUTPUT_TOKENS };
}

/** A search step made concrete for one brand: the request, its price in credits, and the key its answer is cached under. */
export interface SearchPlan {
  query: string;
  request: SearchRequest & { depth: SearchDepth; maxResults: number };
  credits: number;
  cacheKey: string;
}

/** An LLM step made concrete for one brand: the request, the links its answer may cite, its cache key. */
export interface LlmPlan {
  request: LlmRequest;
  shownUrls: Set<string>;
  cacheKey: string;
}

/**
 * The one place a step becomes a request: the pipeline calls what this says, and the
 * preflight estimate looks up the same cache keys, so the two can never disagree.
 */
export function planSearch(step: SearchStep, ctx: TemplateContext, defaults: StepDefaults): SearchPlan {
  const query = renderQuery(step, ctx);
  const depth = step.depth ?? defaults.searchDepth;
  const maxResults = step.maxResults ?? defaults.searchMaxResults;
  const domains = {
    ...(step.includeDomains?.length ? { includeDomains: [...step.includeDomains] } : {}),
    ...(step.excludeDomains?.length ? { excludeDomains: [...step.excludeDomains] } : {}),
  };
  // Without domain filters the key is what it was before recipes: cached searches stay valid.
  return { query, request: { depth, maxResults, ...domains }, credits: creditsForDepth(depth), cacheKey: cacheKeyOf({ query, depth, maxResults, ...domains }) };
}

const FORMATS = new WeakMap<LlmStep, JsonSchemaFormat>();

/** The step's response format, built once per step object (its schema tokens are counted once too). */
function responseFormat(step: LlmStep): JsonSchemaFormat {
  let format = FORMATS.get(step);
  if (!format) {
    format = responseFormatOf(step) as JsonSchemaFormat;
    FORMATS.set(step, format);
  }
  return format;
}

export function planLlm(step: LlmStep, ctx: TemplateContext, defaults: StepDefaults, repairNote?: string): LlmPlan {
  const request: LlmRequest = {
    messages: renderMessages(step, ctx, repairNote),
    model: step.model ?? defaults.model,
    maxOutputTokens: step.maxOutputTokens ?? defaults.maxOutputTokens,
    temperature: step.temperature ?? 0,
    responseFormat: responseFormat(step),
  };
  const { messages, model, maxOutputTokens, temperature, responseFormat: format } = request;
  // Everything the cached (cleaned) answer depends on: model, cap, sampling, the exact prompt
  // (its inputs included), the schema, and the fields' own rules (a url and a string field
  // share a JSON schema type, a length cap is not in the schema) with the cleaning's version.
  const rules = { semantics: RECIPE_SEMANTICS, fields: step.fields };
  return { request, shownUrls: shownUrls(step, ctx), cacheKey: cacheKeyOf({ model, maxOutputTokens, temperature, schema: format.json_schema, rules, messages }) };
}
