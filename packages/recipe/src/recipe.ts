/**
 * A recipe: the ordered steps (web searches and LLM calls) that enrich one brand. This is the
 * normalized form every other module works on; the file format (snake_case keys) is mapped to
 * it by `parseRecipe`.
 */
export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'url' | 'list' | 'sources';
export type FieldValue = string | number | boolean | string[] | null;

export interface RecipeField {
  /** snake_case, unique across the whole recipe: it becomes an export column. */
  name: string;
  type: FieldType;
  /** Goes into the JSON schema the model answers to. */
  description: string;
  /** A null, missing or unusable value makes the answer invalid (the pipeline then asks once more). */
  required: boolean;
  /** enum only: the allowed values, answered case-insensitively, stored in this spelling. */
  values?: string[];
  /** string, and each item of a list: longer text is cut with `…`. */
  maxLength?: number;
  /** number/integer: a value outside [min, max] is unusable. */
  min?: number;
  max?: number;
}

/** Skip the step when EVERY named value is present: a field of an earlier llm step, or `hint.<column>`. */
export interface SkipRule {
  present: string[];
}

export type SearchDepth = 'basic' | 'advanced' | 'fast' | 'ultra-fast';

export interface SearchStep {
  id: string;
  type: 'search';
  query: string;
  depth?: SearchDepth;
  maxResults?: number;
  includeDomains?: string[];
  excludeDomains?: string[];
  skipIf?: SkipRule;
}

export interface LlmStep {
  id: string;
  type: 'llm';
  system?: string;
  prompt: string;
  fields: RecipeField[];
  maxOutputTokens?: number;
  model?: string;
  temperature?: number;
  finalize: boolean;
  /** How the step's calls are served and billed; absent: the run's tier (`--llm-tier`, default standard). */
  tier?: 'standard' | 'flex' | 'batch';
  skipIf?: SkipRule;
}

export type RecipeStep = SearchStep | LlmStep;

export interface Recipe {
  name: string;
  description?: string;
  steps: RecipeStep[];
}

/**
 * Names a field cannot take: the columns written beside the fields (the export's row,
 * brand, status and reason; a result's key).
 */
export const RESERVED_FIELD_NAMES: ReadonlySet<string> = new Set(['row', 'brand', 'status', 'reason', 'key']);

/** All llm steps' fields in step order: the export and sheet columns. */
export function resultFields(recipe: Recipe): RecipeField[] {
  return recipe.steps.flatMap((step) => (step.type === 'llm' ? step.fields : []));
}
