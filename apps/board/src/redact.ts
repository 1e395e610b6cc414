export const REDACTED = '[REDACTED]';

/**
 * Field names whose values are credentials. Counts such as `inputTokens` and the brand
 * `key` are not: only names ending in "token" (singular) or naming a key of an API.
 */
const SECRET_FIELD = /secret|passw(or)?d|authori[sz]ation|cookie|credential|bearer|(api|private|access|signing|client)[_-]?key|token$/i;

/** Credential-looking text inside any string: provider keys, bearer tokens, URL passwords, PEM keys. */
const SECRET_TEXT: ReadonlyArray<[RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, REDACTED],
  [/\b(sk|tvly)-[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\bya29\.[A-Za-z0-9._-]{8,}/g, REDACTED],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
  [/([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s/@]+@/gi, `$1${REDACTED}@`],
];

export function redactText(text: string): string {
  return SECRET_TEXT.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);
}

/**
 * A deep copy of `value` safe to show: fields named like secrets are masked whole, and
 * credential-looking text is masked inside every string (error messages, logs, URLs).
 */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) && v !== null && v !== undefined && v !== '' ? REDACTED : redactSecrets(v)]),
    );
  }
  return value;
}
