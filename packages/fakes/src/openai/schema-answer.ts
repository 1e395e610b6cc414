import { fnv1a, pick, slugify } from '../server/hash.js';
import { isRecord } from '../server/http-io.js';
import { expectedFacts, type BrandFacts } from './facts.js';
import { lastUserText, readPrompt } from './prompt.js';
import type { ChatMessageInput } from './tokens.js';

/** What every value of one answer is derived from. */
interface Subject {
  brand: string;
  urls: string[];
  facts: BrandFacts;
}

const QUALITIES = [
  'well documented',
  'distinctive',
  'consistent across markets',
  'widely recognised',
  'steadily evolving',
  'focused on quality',
  'shaped by its customers',
  'clearly communicated',
] as const;

const TAGS = [
  'premium',
  'sustainable',
  'online',
  'retail',
  'wholesale',
  'classic',
  'limited edition',
  'eco-friendly',
  'handmade',
  'subscription',
  'international',
  'local',
] as const;

const SYLLABLES = ['ka', 'lo', 'mi', 'ra', 've', 'no', 'ti', 'sa', 'zu', 'be', 'do', 'fi', 'gu', 'ha', 'ne', 'po'] as const;

/** Range an integer or number property without minimum and maximum is drawn from. */
const DEFAULT_SPAN = 100;

/**
 * The `schema` of a `json_schema` response_format when it describes an object with
 * `properties`; null otherwise, and the fake then answers brand facts as it always did.
 */
export function answerSchemaOf(responseFormat: unknown): Record<string, unknown> | null {
  if (!isRecord(responseFormat) || responseFormat['type'] !== 'json_schema') return null;
  const jsonSchema = responseFormat['json_schema'];
  const schema = isRecord(jsonSchema) ? jsonSchema['schema'] : undefined;
  return isRecord(schema) && isRecord(schema['properties']) ? schema : null;
}

/**
 * The object the fake answers for a structured-output request (`schema` = the
 * `json_schema.schema` sent): exactly the schema's properties, each derived from the brand
 * (the prompt's `Brand:` line, else a pseudo-brand hashed from the last user message).
 * The brand-facts names keep `expectedFacts`' values and `sources` (any array named
 * *source* or *url*) lists the prompt's `URL:` lines, so the brand-facts schema gets the
 * very answer `expectedContent` describes. Other properties get a deterministic value of
 * their type: an enum's non-null value, an integer or one-decimal number within
 * minimum..maximum (default 0..100), a boolean, a sentence naming the brand and the field
 * (a URL for names with url/website/site), 2-3 short strings for a string array.
 * Nullable properties are never null, except founded_year's unknown years.
 */
export function expectedAnswer(schema: unknown, messages: readonly ChatMessageInput[]): Record<string, unknown> {
  const prompt = readPrompt(messages);
  const brand = prompt.brand ?? pseudoBrand(lastUserText(messages));
  return objectValue(schema, { brand, urls: prompt.urls, facts: expectedFacts(brand) }, '');
}

/** A made-up but pronounceable brand name, stable for the same text: "Kavoruti". */
export function pseudoBrand(text: string): string {
  const h = fnv1a(`pseudo-brand|${text}`);
  const name = [0, 4, 8, 12].map((shift) => SYLLABLES[(h >>> shift) & 15]).join('');
  return name.charAt(0).toUpperCase() + name.slice(1);
}

function objectValue(schema: unknown, s: Subject, prefix: string): Record<string, unknown> {
  const properties = isRecord(schema) && isRecord(schema['properties']) ? schema['properties'] : {};
  const out: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(properties)) {
    out[name] = propertyValue(isRecord(property) ? property : {}, name, prefix === '' ? name : `${prefix}.${name}`, s);
  }
  return out;
}

/** `path` (the property's place in the answer) salts every hash, so fields of one brand differ. */
function propertyValue(property: Record<string, unknown>, name: string, path: string, s: Subject): unknown {
  const kind = kindOf(property);
  const known = knownValue(name, s);
  if (known !== undefined && fits(known, property)) return known;
  if (kind === 'array' && /source|url/i.test(name) && isStringSchema(itemsOf(property))) return s.urls;
  const choices = Array.isArray(property['enum']) ? property['enum'] : null;
  if (choices !== null) {
    const [first, ...rest] = choices.filter((v: unknown) => v !== null);
    return first === undefined ? null : pick([first, ...rest], s.brand, path);
  }
  const h = fnv1a(`${path}|${s.brand}`);
  switch (kind) {
    case 'integer': {
      const [lo, hi] = bounds(property);
      const min = Math.ceil(lo);
      const max = Math.floor(hi);
      return max < min ? min : min + (h % (max - min + 1));
    }
    case 'number': {
      const [lo, hi] = bounds(property);
      const min = Math.ceil(lo * 10);
      const max = Math.floor(hi * 10);
      return max < min ? lo : (min + (h % (max - min + 1))) / 10;
    }
    case 'boolean':
      return h % 2 === 1;
    case 'object':
      return objectValue(property, s, path);
    case 'array':
      return arrayValue(itemsOf(property), name, path, s, h);
    default:
      return stringValue(name, path, s);
  }
}

function arrayValue(items: Record<string, unknown>, name: string, path: string, s: Subject, h: number): unknown[] {
  const length = 2 + (h % 2);
  if (isStringSchema(items) && !Array.isArray(items['enum'])) {
    // Consecutive steps through TAGS: distinct strings, a different run per brand and field.
    return Array.from({ length }, (_, i) => TAGS[(h + i * 5) % TAGS.length]);
  }
  return Array.from({ length }, (_, i) => propertyValue(items, name, `${path}[${i}]`, s));
}

function stringValue(name: string, path: string, s: Subject): string {
  if (/url|website|site/i.test(name)) return `${s.facts.website}/${slugify(name)}`;
  return `The ${name.replace(/[_-]+/g, ' ').trim()} of ${s.brand} is ${pick(QUALITIES, s.brand, path)}.`;
}

/** The brand-facts names answer what `expectedFacts` says, as the fake always has. */
function knownValue(name: string, s: Subject): unknown {
  return Object.hasOwn(s.facts, name) ? s.facts[name as keyof BrandFacts] : undefined;
}

/** Whether a known value is a valid answer for the property (else it gets a value of its own type). */
function fits(value: unknown, property: Record<string, unknown>): boolean {
  const types = typesOf(property);
  if (value === null) return isNullable(property);
  if (Array.isArray(property['enum']) && !property['enum'].includes(value)) return false;
  if (typeof value === 'string') return types.includes('string');
  if (typeof value === 'number') {
    const typed = types.includes('number') || (types.includes('integer') && Number.isInteger(value));
    const { minimum, maximum } = property;
    return typed && !(typeof minimum === 'number' && value < minimum) && !(typeof maximum === 'number' && value > maximum);
  }
  return false;
}

function typesOf(property: Record<string, unknown>): string[] {
  const type = property['type'];
  if (typeof type === 'string') return [type];
  return Array.isArray(type) ? type.filter((t): t is string => typeof t === 'string') : [];
}

/** The property's non-null type; an untyped property is answered as a string. */
function kindOf(property: Record<string, unknown>): string {
  return typesOf(property).find((t) => t !== 'null') ?? 'string';
}

function isNullable(property: Record<string, unknown>): boolean {
  const choices = property['enum'];
  return typesOf(property).includes('null') || (Array.isArray(choices) && choices.includes(null));
}

function itemsOf(property: Record<string, unknown>): Record<string, unknown> {
  const items = property['items'];
  return isRecord(items) ? items : { type: 'string' };
}

function isStringSchema(schema: Record<string, unknown>): boolean {
  return kindOf(schema) === 'string';
}

/** minimum..maximum; a missing side is DEFAULT_SPAN away from the other (0..100 without either). */
function bounds(property: Record<string, unknown>): [number, number] {
  const minimum = typeof property['minimum'] === 'number' ? property['minimum'] : undefined;
  const maximum = typeof property['maximum'] === 'number' ? property['maximum'] : undefined;
  const lo = minimum ?? (maximum === undefined || maximum >= 0 ? 0 : maximum - DEFAULT_SPAN);
  return [lo, maximum ?? lo + DEFAULT_SPAN];
}
