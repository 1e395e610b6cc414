import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { RecipeError, type RecipeIssue } from './recipe-error.js';
import { RESERVED_FIELD_NAMES, type LlmStep, type Recipe, type RecipeField, type RecipeStep, type SearchStep, type SkipRule } from './recipe.js';
import { HINT_NAME, scanTemplate } from './template.js';

const MAX_STEPS = 20;
const DEFAULT_MAX_LENGTH = 1000;

const text = z.string().trim().min(1, 'must not be empty');
/** Templates: line breaks of any platform become `\n`; surrounding blank space is not part of the prompt. */
const template = text.transform((value) => value.replace(/\r\n?/g, '\n'));
const stepId = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,39}$/, 'must start with a lowercase letter, then lowercase letters, digits, "-" or "_", at most 40 characters');
const fieldName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be snake_case: a lowercase letter, then lowercase letters, digits or "_", at most 63 characters');
const domain = z.string().trim().regex(/^[^\s/]+$/, 'must be a domain name such as example.com');
const skipIf = z.strictObject({ present: z.array(text).min(1, 'must name at least one value') });

// The file format: snake_case keys, strict objects so a typo is an error, not a silent default.
const fieldFile = z.strictObject({
  name: fieldName,
  type: z.enum(['string', 'number', 'integer', 'boolean', 'enum', 'url', 'list', 'sources']),
  description: text,
  required: z.boolean().default(false),
  values: z.array(text).min(1, 'must list at least one value').max(100, 'must list at most 100 values').optional(),
  max_length: z.int().min(1).max(100_000).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
});
const searchFile = z.strictObject({
  id: stepId,
  type: z.literal('search'),
  query: template,
  depth: z.enum(['basic', 'advanced', 'fast', 'ultra-fast']).optional(),
  max_results: z.int().min(1).max(20).optional(),
  include_domains: z.array(domain).optional(),
  exclude_domains: z.array(domain).optional(),
  skip_if: skipIf.optional(),
});
const llmFile = z.strictObject({
  id: stepId,
  type: z.literal('llm'),
  system: template.optional(),
  prompt: template,
  fields: z.array(fieldFile).min(1, 'must list at least one field'),
  max_output_tokens: z.int().min(16).max(32768).optional(),
  model: text.optional(),
  temperature: z.number().min(0).max(2).optional(),
  finalize: z.boolean().default(false),
  tier: z.enum(['standard', 'flex', 'batch'], { message: 'tier must be standard, flex or batch' }).optional(),
  skip_if: skipIf.optional(),
});
const recipeFile = z.strictObject({
  name: text,
  description: text.optional(),
  steps: z
    .array(z.discriminatedUnion('type', [searchFile, llmFile]))
    .min(1, 'must list at least one step')
    .max(MAX_STEPS, `must list at most ${MAX_STEPS} steps`),
});

type FieldFile = z.infer<typeof fieldFile>;
type StepFile = z.infer<typeof recipeFile>['steps'][number];

/** Every key of the file format, to suggest the right spelling of an unknown one. */
const KNOWN_KEYS = [...new Set([recipeFile, fieldFile, searchFile, llmFile, skipIf].flatMap((schema) => Object.keys(schema.shape)))];

/** Keeps only the keys that have a value, so equal recipes are equal objects. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function toField(field: FieldFile): RecipeField {
  const textual = field.type === 'string' || field.type === 'list';
  return defined({
    name: field.name,
    type: field.type,
    description: field.description,
    required: field.required,
    values: field.values,
    maxLength: field.max_length ?? (textual ? DEFAULT_MAX_LENGTH : undefined),
    min: field.min,
    max: field.max,
  });
}

function toStep(step: StepFile): RecipeStep {
  const skip: SkipRule | undefined = step.skip_if && { present: step.skip_if.present };
  if (step.type === 'search') {
    return defined<SearchStep>({
      id: step.id,
      type: 'search',
      query: step.query,
      depth: step.depth,
      maxResults: step.max_results,
      includeDomains: step.include_domains,
      excludeDomains: step.exclude_domains,
      skipIf: skip,
    });
  }
  return defined<LlmStep>({
    id: step.id,
    type: 'llm',
    system: step.system,
    prompt: step.prompt,
    fields: step.fields.map(toField),
    maxOutputTokens: step.max_output_tokens,
    model: step.model,
    temperature: step.temperature,
    finalize: step.finalize,
    tier: step.tier,
    skipIf: skip,
  });
}

function suggestKey(key: string): string {
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const close = KNOWN_KEYS.find((known) => known === snake || editDistance(known, key) <= 2);
  return close ? ` (did you mean "${close}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function at(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) current = current !== null && typeof current === 'object' ? (current as Record<PropertyKey, unknown>)[key] : undefined;
  return current;
}

/** A schema issue said as the recipe's author sees it: which step, which field, which key. */
function toIssue(raw: unknown, issue: z.core.$ZodIssue): RecipeIssue {
  const [stepsKey, stepIndex, fieldsKey, fieldIndex] = issue.path;
  const located: RecipeIssue = { message: '' };
  let rest = issue.path;
  if (stepsKey === 'steps' && typeof stepIndex === 'number') {
    const id = at(raw, ['steps', stepIndex, 'id']);
    located.step = typeof id === 'string' ? id : `#${stepIndex + 1}`;
    rest = issue.path.slice(2);
    if (fieldsKey === 'fields' && typeof fieldIndex === 'number') {
      const name = at(raw, ['steps', stepIndex, 'fields', fieldIndex, 'name']);
      located.field = typeof name === 'string' ? name : `#${fieldIndex + 1}`;
      rest = issue.path.slice(4);
    }
  }
  const key = rest.map((part) => (typeof part === 'number' ? `[${part}]` : String(part))).join('.').replace(/\.\[/g, '[');
  if (issue.code === 'unrecognized_keys') {
    located.message = issue.keys.map((unknown) => `unknown key "${unknown}"${suggestKey(unknown)}`).join('; ');
    if (key) located.message = `${key}: ${located.message}`;
  } else if (issue.code === 'invalid_union' && key.endsWith('type')) {
    located.message = `${key} must be "search" or "llm"`;
  } else if (issue.code === 'invalid_type' && at(raw, issue.path) === undefined) {
    located.message = `${key} is required`;
  } else {
    located.message = key ? `${key}: ${issue.message}` : issue.message;
  }
  return located;
}

/** Cross-references the schema cannot see: ids, field names and what each template or rule refers to. */
function crossCheck(recipe: Recipe): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  const searchSteps = new Set<string>();
  const stepIds = new Set<string>();
  const fields = new Set<string>();

  const checkTemplate = (step: RecipeStep, key: string, source: string, inQuery: boolean) => {
    const { placeholders, problems } = scanTemplate(source);
    for (const problem of problems) issues.push({ step: step.id, message: `${key}: ${problem}` });
    for (const placeholder of placeholders) {
      if (placeholder.kind === 'results' && inQuery) {
        issues.push({ step: step.id, message: `${key}: {{results.${placeholder.step}}} cannot go into a search query` });
      } else if (placeholder.kind === 'results' && !searchSteps.has(placeholder.step)) {
        issues.push({ step: step.id, message: `${key}: {{results.${placeholder.step}}} names no earlier search step` });
      } else if (placeholder.kind === 'field' && !fields.has(placeholder.name)) {
        issues.push({ step: step.id, message: `${key}: {{field.${placeholder.name}}} names no field of an earlier llm step` });
      }
    }
  };

  for (const step of recipe.steps) {
    if (stepIds.has(step.id)) issues.push({ step: step.id, message: 'duplicate step id' });
    for (const name of step.skipIf?.present ?? []) {
      if (name.startsWith('hint.')) {
        if (!HINT_NAME.test(name.slice('hint.'.length))) issues.push({ step: step.id, message: `skip_if: "${name}" is not a hint column name` });
      } else if (!fields.has(name)) {
        issues.push({ step: step.id, message: `skip_if: "${name}" names no field of an earlier llm step (nor hint.<column>)` });
      }
    }
    if (step.type === 'search') {
      checkTemplate(step, 'query', step.query, true);
      searchSteps.add(step.id);
    } else {
      if (step.system !== undefined) checkTemplate(step, 'system', step.system, false);
      checkTemplate(step, 'prompt', step.prompt, false);
      const showsResults = [step.prompt, step.system ?? ''].some((source) => scanTemplate(source).placeholders.some((p) => p.kind === 'results'));
      for (const field of step.fields) {
        // Only links the step was shown may be cited: with no results in its prompt, the field stays empty.
        if (field.type === 'sources' && !showsResults) {
          issues.push({ step: step.id, field: field.name, message: 'a sources field needs search results in the step\'s prompt ({{results.<search step>}}): it can only cite links the step was shown' });
        }
      }
      // The step's own fields become visible to later steps only.
      for (const field of step.fields) issues.push(...checkField(step.id, field, fields));
      for (const field of step.fields) fields.add(field.name);
    }
    stepIds.add(step.id);
  }
  if (!recipe.steps.some((step) => step.type === 'llm')) issues.push({ message: 'steps: at least one step must be an llm step' });
  return issues;
}


function checkField(step: string, field: RecipeField, earlier: ReadonlySet<string>): RecipeIssue[] {
  const problems: string[] = [];
  if (earlier.has(field.name)) problems.push('duplicate field name (field names are export columns: unique across the recipe)');
  if (RESERVED_FIELD_NAMES.has(field.name)) problems.push(`"${field.name}" names a column of its own beside the fields (${[...RESERVED_FIELD_NAMES].join(', ')}): give the field another name`);
  if (field.type === 'enum') {
    if (!field.values) problems.push('an enum field needs values');
    const seen = new Set<string>();
    for (const value of field.values ?? []) {
      // Answers match values case-insensitively, so values differing only by case are the same.
      if (seen.has(value.toLowerCase())) problems.push(`value "${value}" is listed twice`);
      seen.add(value.toLowerCase());
    }
  } else if (field.values) {
    problems.push('values apply only to enum fields');
  }
  const numeric = field.type === 'number' || field.type === 'integer';
  if (!numeric && (field.min !== undefined || field.max !== undefined)) problems.push('min and max apply only to number and integer fields');
  if (field.min !== undefined && field.max !== undefined && field.min >= field.max) problems.push('min must be below max');
  if (field.maxLength !== undefined && field.type !== 'string' && field.type !== 'list') {
    problems.push('max_length applies only to string and list fields');
  }
  return problems.map((message) => ({ step, field: field.name, message }));
}

/** Reads a recipe (YAML, or JSON, which YAML reads too), checks it whole and applies the defaults. */
export function parseRecipe(text: string, origin: string): Recipe {
  const document = parseDocument(text);
  if (document.errors.length > 0) {
    throw new RecipeError(origin, document.errors.map((error) => ({ message: `not valid YAML or JSON: ${oneLineMessage(error.message)}` })));
  }
  let raw: unknown;
  try {
    raw = document.toJS();
  } catch (error) {
    // The YAML library refuses alias bombs ("billion laughs") here, with a plain Error.
    throw new RecipeError(origin, [{ message: `not a usable recipe: ${oneLineMessage((error as Error).message)}` }]);
  }
  const parsed = recipeFile.safeParse(raw);
  if (!parsed.success) {
    throw new RecipeError(origin, parsed.error.issues.map((issue) => toIssue(raw, issue)));
  }
  const recipe = defined<Recipe>({ name: parsed.data.name, description: parsed.data.description, steps: parsed.data.steps.map(toStep) });
  const issues = crossCheck(recipe);
  if (issues.length > 0) throw new RecipeError(origin, issues);
  return recipe;
}

function oneLineMessage(message: string): string {
  return message.split('\n')[0] ?? message;
}

/** Reads and parses a recipe file; a file that cannot be read is a RecipeError naming it. */
export async function loadRecipeFile(path: string): Promise<Recipe> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RecipeError(path, [{ message: code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(error)})` }]);
  }
  return parseRecipe(text, path);
}
