import type { FieldValue, LlmStep, RecipeField } from './recipe.js';

/** Items kept of a list or sources answer. */
const MAX_ITEMS = 50;

export interface ResponseFormat {
  type: 'json_schema';
  json_schema: { name: string; schema: Record<string, unknown>; strict: true };
}

export type AnswerOutcome = { ok: true; values: Record<string, FieldValue> } | { ok: false; message: string };

function propertySchema(field: RecipeField): Record<string, unknown> {
  const nullable = !field.required;
  const type = (json: string) => (nullable ? [json, 'null'] : json);
  const schema: Record<string, unknown> = { description: field.description };
  switch (field.type) {
    case 'string':
    case 'url':
      schema.type = type('string');
      break;
    case 'number':
    case 'integer':
      schema.type = type(field.type);
      if (field.min !== undefined) schema.minimum = field.min;
      if (field.max !== undefined) schema.maximum = field.max;
      break;
    case 'boolean':
      schema.type = type('boolean');
      break;
    case 'enum':
      schema.type = type('string');
      schema.enum = nullable ? [...(field.values ?? []), null] : [...(field.values ?? [])];
      break;
    case 'list':
    case 'sources':
      schema.type = type('array');
      schema.items = { type: 'string' };
      break;
  }
  return schema;
}

/** The step's fields as a strict structured-output schema (OpenAI's rules: every key required, none extra). */
export function responseFormatOf(step: LlmStep): ResponseFormat {
  return {
    type: 'json_schema',
    json_schema: {
      name: step.id.replace(/-/g, '_'),
      strict: true,
      schema: {
        type: 'object',
        additionalProperties: false,
        required: step.fields.map((field) => field.name),
        properties: Object.fromEntries(step.fields.map((field) => [field.name, propertySchema(field)])),
      },
    },
  };
}

/** Trims, drops control characters and caps free text from the model; nothing left is null. */
function cleanText(value: string, max: number): string | null {
  // eslint-disable-next-line no-control-regex
  const cleaned = value.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '').trim();
  if (cleaned === '') return null;
  return cleaned.length > max ? `${cleaned.slice(0, max - 1)}…` : cleaned;
}

function httpUrl(value: string): URL | null {
  try {
    const url = new URL(value.trim());
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

type Cleaned = { value: FieldValue } | { problem: string };

function stringList(value: unknown): string[] | null {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : null;
}

/** One field of the answer as it may be stored, or why the answer is unusable. The model's word is never taken as-is. */
function cleanValue(field: RecipeField, value: unknown, shown: ReadonlyMap<string, string>): Cleaned {
  if (value === null || value === undefined) return { value: null };
  const wrongType = (expected: string): Cleaned => ({ problem: `${field.name} must be ${expected}` });
  switch (field.type) {
    case 'string':
      return typeof value === 'string' ? { value: cleanText(value, field.maxLength ?? 1000) } : wrongType('a string or null');
    case 'url':
      return typeof value === 'string' ? { value: httpUrl(value)?.toString() ?? null } : wrongType('a URL string or null');
    case 'boolean':
      return typeof value === 'boolean' ? { value } : wrongType('true, false or null');
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return wrongType('a number or null');
      if (field.type === 'integer' && !Number.isInteger(value)) return wrongType('an integer or null');
      const inRange = (field.min === undefined || value >= field.min) && (field.max === undefined || value <= field.max);
      return { value: inRange ? value : null };
    }
    case 'enum': {
      if (typeof value !== 'string') return wrongType('one of the listed values or null');
      const wanted = value.trim().toLowerCase();
      return { value: field.values?.find((allowed) => allowed.toLowerCase() === wanted) ?? null };
    }
    case 'list': {
      const items = stringList(value);
      if (!items) return wrongType('a list of strings or null');
      const kept = items.flatMap((item) => cleanText(item, field.maxLength ?? 1000) ?? []).slice(0, MAX_ITEMS);
      return { value: kept.length > 0 ? kept : null };
    }
    case 'sources': {
      const items = stringList(value);
      if (!items) return wrongType('a list of URL strings or null');
      // Only links the prompt showed count: an answer can neither invent a source nor slip in a
      // `javascript:` or `=IMPORTXML(...)` one. The link is stored as the search result gave it.
      const kept = new Set<string>();
      for (const item of items) {
        const url = httpUrl(item);
        const asShown = url && shown.get(url.href);
        if (asShown) kept.add(asShown);
      }
      return { value: kept.size > 0 ? [...kept].slice(0, MAX_ITEMS) : null };
    }
  }
}

function isEmpty(value: FieldValue): boolean {
  return value === null || (Array.isArray(value) && value.length === 0);
}

/**
 * Checks and cleans the model's JSON answer for one step. Unusable values become null; a wrong
 * JSON type, or a required field left null, makes the whole answer invalid (the message names
 * the fields, for the repair note).
 */
export function parseAnswer(step: LlmStep, json: unknown, shownUrls: ReadonlySet<string>): AnswerOutcome {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { ok: false, message: 'the answer must be a JSON object' };
  const shown = new Map<string, string>();
  for (const url of shownUrls) {
    const parsed = httpUrl(url);
    if (parsed) shown.set(parsed.href, url);
  }
  const values: Record<string, FieldValue> = {};
  const problems: string[] = [];
  for (const field of step.fields) {
    const cleaned = cleanValue(field, Object.hasOwn(json, field.name) ? (json as Record<string, unknown>)[field.name] : undefined, shown);
    if ('problem' in cleaned) problems.push(cleaned.problem);
    else if (field.required && isEmpty(cleaned.value)) problems.push(`${field.name} is required: give a valid value, not null`);
    else values[field.name] = cleaned.value;
  }
  return problems.length > 0 ? { ok: false, message: problems.join('; ') } : { ok: true, values };
}
