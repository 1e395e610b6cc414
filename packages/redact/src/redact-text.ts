/** What a masked secret reads as, in logs, the board and error messages. */
export const REDACTED = '[REDACTED]';
/**
 * What a URL's password reads as. Shorter than REDACTED and free of brackets, so a printed
 * URL still reads as one (`redis://:***@host:6379`).
 */
export const URL_PASSWORD_MASK = '***';

/** Names of variables, fields and `name=value` pairs whose value is a credential. */
const SECRET_WORD = String.raw`(?:passw(?:or)?d|passwd|pwd|secret|credentials?|authori[sz]ation|cookie|api[_-]?key|apikey|(?:access|auth|refresh|bearer|id|session)[_-]?token|(?:private|signing|client|secret|access)[_-]?key)`;

/**
 * Credential-looking text, in the order applied. Provider keys keep their recognisable
 * prefix (`sk-proj-[REDACTED]`) so a reader still sees which key was involved.
 */
const SECRET_TEXT: ReadonlyArray<readonly [RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // PEM private keys through their END line; a key cut before it (a truncated message still
  // leaks) through its last base64 line, newlines real or JSON-escaped.
  [
    /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|(?:(?:\r?\n|\\n)[A-Za-z-]+:[^\r\n\\]*)*(?:(?:\r?\n|\\r|\\n)+[A-Za-z0-9+/=]+)*)/g,
    REDACTED,
  ],
  // A URL's password: everything between `scheme://user:` and the last `@` of the authority,
  // so a password holding `@` or `:` (`redis://:p@ss:w0rd@host`) is masked whole.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#:@"'<>]*:)[^\s/?#"'<>]*@/gi, `$1${URL_PASSWORD_MASK}@`],
  // JSON text inside a string (an error message quoting a request): `"api_key": "..."`.
  [new RegExp(String.raw`("[\w.-]*${SECRET_WORD}[\w.-]*"\s*:\s*)"(?:[^"\\]|\\.)*"`, 'gi'), `$1"${REDACTED}"`],
  // `password=...`, `secret: ...`, `OPENAI_API_KEY=...`, `Authorization: Bearer ...` in free
  // text, env dumps and query strings. An auth scheme word stays; the credential after it goes.
  [
    new RegExp(String.raw`\b([\w.-]*${SECRET_WORD}[\w.-]*)(\s*[=:]\s*)((?:Bearer|Basic)\s+)?("[^"]*"|'[^']*'|[^\s,;&"'<>\0]+)`, 'gi'),
    (_m, name: string, sep: string, scheme: string | undefined, value: string) =>
      `${name}${sep}${scheme ?? ''}${value === REDACTED || value === URL_PASSWORD_MASK ? value : REDACTED}`,
  ],
  // Provider keys: OpenAI and OpenRouter (`sk-`, `sk-proj-`, `sk-or-v1-`), Tavily (any length), Google.
  [/\b(sk-(?:proj-|or-v1-|or-|ant-|svcacct-|admin-)?)[A-Za-z0-9_-]{8,}/g, `$1${REDACTED}`],
  [/\btvly-(?!\[REDACTED\])[A-Za-z0-9_-]+/g, `tvly-${REDACTED}`],
  [/\bAIza[0-9A-Za-z_-]{20,}/g, `AIza${REDACTED}`],
  [/\bya29\.[A-Za-z0-9._-]{8,}/g, `ya29.${REDACTED}`],
  // `Authorization: Bearer <token>` / `Basic <base64>`: a token has a digit, capital or sign,
  // so prose such as "Basic authentication" stays readable.
  [/\b([Bb]earer|[Bb]asic)\s+(?=[A-Za-z0-9._~+/=-]*[A-Z0-9._~+/=])[A-Za-z0-9._~+/=-]{8,}/g, `$1 ${REDACTED}`],
];

/** `text` with every credential-looking part masked. Ordinary text comes back unchanged. */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_TEXT) {
    out = typeof replacement === 'string' ? out.replace(pattern, replacement) : out.replace(pattern, replacement as (m: string, ...g: string[]) => string);
  }
  return out;
}

const SECRET_NAME = new RegExp(String.raw`${SECRET_WORD}|token$`, 'i');

/**
 * True for a field or variable name whose value is a credential: `apiKey`, `OPENAI_API_KEY`,
 * `password`, `authorization`, `accessToken`. Not the brand `key`, nor counts like `inputTokens`.
 */
export function isSecretName(name: string): boolean {
  return name !== 'key' && SECRET_NAME.test(name);
}
