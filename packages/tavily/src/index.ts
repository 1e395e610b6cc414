export { TavilySearchClient, creditsForDepth, searchQueryFor } from './tavily-search-client.js';
export type { TavilySearchOptions, SearchHit, SearchOutcome, SearchDepth } from './tavily-search-client.js';
export { classifyTavilyError } from './classify-tavily-error.js';
