import { REDACTED, isSecretName, redactText } from './redact-text.js';

/**
 * A deep copy of `value` safe to show or log: fields named like secrets are masked whole,
 * credential-looking text is masked inside every string, and errors keep their name,
 * message and stack (masked) instead of vanishing into `{}`.
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

function walk(value: unknown, leakedKeys: Set<string>, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => walk(v, leakedKeys, seen));
  const entries: Array<[string, unknown]> = value instanceof Error ? errorEntries(value) : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [name, v] of entries) {
    out[name] = isSecretName(name) && v !== null && v !== undefined && v !== '' ? REDACTED : walk(v, leakedKeys, seen);
  }
  const record = value as { name?: unknown; key?: unknown };
  if (typeof record.name === 'string' && typeof record.key === 'string' && record.key !== '' && redactText(record.name) !== record.name) {
    leakedKeys.add(record.key);
    out['key'] = REDACTED;
  }
  return out;
}

/** An error as plain fields: what pino's error serializer and JSON both understand. */
function errorEntries(error: Error): Array<[string, unknown]> {
  return [
    ['type', error.name],
    ['message', error.message],
    ['stack', error.stack],
    ...Object.entries(error),
    ...(error.cause === undefined ? [] : [['cause', error.cause] as [string, unknown]]),
  ];
}

function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, map));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, map)]));
  return value;
}
