export { TavilySearchClient, creditsForDepth } from './tavily-search-client.js';
export type { TavilySearchOptions, SearchRequest, SearchHit, SearchOutcome, SearchDepth } from './tavily-search-client.js';
export { classifyTavilyError } from './classify-tavily-error.js';
