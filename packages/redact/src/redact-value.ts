import { REDACTED, isSecretName, redactText } from './redact-text.js';

/**
 * A deep copy of `value` safe to show or log: fields named like secrets are masked whole,
 * credential-looking text is masked inside every string, and an error stays an error of
 * its class (what pino's error serializer expects) with its message, stack and fields masked.
 *
 * Brand key slugs are redacted like names: a brand's `key` is a slug of its `name`, so when
 * a `{ name, key }` record's name needed masking (a CSV row that was really a secret), the
 * key is masked too, wherever it appears in the value (a job id is `<run>.<key>`).
 */
export function redactValue(value: unknown): unknown {
  const leakedKeys = new Set<string>();
  const first = walk(value, leakedKeys, new WeakSet());
  if (leakedKeys.size === 0) return first;
  const keys = [...leakedKeys].sort((a, b) => b.length - a.length);
  return mapStrings(first, (text) => keys.reduce((out, key) => out.split(key).join(REDACTED), text));
}

/** `ancestors` holds the objects on the path to `value`: a cycle, not a shared value, is cut. */
function walk(value: unknown, leakedKeys: Set<string>, ancestors: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  // A date serializes to a timestamp and holds nothing to mask.
  if (value instanceof Date) return value;
  if (ancestors.has(value)) return '[Circular]';
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (!(value instanceof Error) && typeof toJSON === 'function') {
    // What serializes is what toJSON gives, so that is what gets masked: a URL's href holds its
    // password. The class never goes out as itself either: pino's path redaction reads a URL's
    // getters on a copy and throws, failing the log call.
    const json: unknown = toJSON.call(value);
    if (json === value) return value;
    ancestors.add(value);
    try {
      return walk(json, leakedKeys, ancestors);
    } finally {
      ancestors.delete(value);
    }
  }
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => walk(v, leakedKeys, ancestors));
    if (value instanceof Error) return redactError(value, leakedKeys, ancestors);
    const out: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(value)) {
      out[name] = isSecretName(name) && v !== null && v !== undefined && v !== '' ? REDACTED : walk(v, leakedKeys, ancestors);
    }
    const record = value as { name?: unknown; key?: unknown };
    if (typeof record.name === 'string' && typeof record.key === 'string' && record.key !== '' && redactText(record.name) !== record.name) {
      leakedKeys.add(record.key);
      out['key'] = REDACTED;
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

function redactError(error: Error, leakedKeys: Set<string>, ancestors: WeakSet<object>): Error {
  const copy = Object.create(Object.getPrototypeOf(error) as object) as Error;
  Object.assign(copy, walk({ ...error }, leakedKeys, ancestors));
  Object.defineProperty(copy, 'message', { value: redactText(error.message), enumerable: false, writable: true, configurable: true });
  Object.defineProperty(copy, 'stack', { value: error.stack === undefined ? undefined : redactText(error.stack), enumerable: false, writable: true, configurable: true });
  if (error.cause !== undefined) Object.defineProperty(copy, 'cause', { value: walk(error.cause, leakedKeys, ancestors), enumerable: false, writable: true, configurable: true });
  return copy;
}

function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, map));
  if (value instanceof Error) {
    value.message = map(value.message);
    if (value.stack !== undefined) value.stack = map(value.stack);
    return value;
  }
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, map)]));
  return value;
}
