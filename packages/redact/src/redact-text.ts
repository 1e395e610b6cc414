/** What a masked secret reads as, in logs, the board and error messages. */
export const REDACTED = '[REDACTED]';
/**
 * What a URL's password reads as. Shorter than REDACTED and free of brackets, so a printed
 * URL still reads as one (`redis://:***@host:6379`).
 */
export const URL_PASSWORD_MASK = '***';

/**
 * Names of variables, fields and `name=value` pairs whose value is a credential. A bare `token`
 * or `pass` counts only as the last word (`GITHUB_TOKEN`, `REDIS_PASS`, `?pass=`), so counts and
 * settings (`inputTokens`, `OPENAI_TOKEN_COUNTING`, `bypass`) read as they are.
 */
const SECRET_WORD = String.raw`(?:passw(?:or)?d|passwd|pwd|(?<=[_.-])pass(?![a-z_])|(?<=[?&])pass(?==)|secret|credentials?|authori[sz]ation|cookie|api[_-]?key|apikey|token(?![a-z_])|(?:private|signing|client|secret|access)[_-]?key)`;

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
  // The name may close a quote, escaped or not (`\"password\":\"...\"`, JSON inside a JSON
  // string), and `=`/`:` may come URL-encoded (a query inside a query). A bare value runs to
  // whitespace, `&` or a quote: a password holding `,` or `;` is masked whole.
  [
    new RegExp(String.raw`\b([\w.-]*${SECRET_WORD}[\w.-]*)((?:\\?["'])?\s*(?:[=:]|%3[ADad])\s*)((?:Bearer|Basic)\s+)?(\\"(?:[^"\\]|\\[^"])*\\"|"[^"]*"|'[^']*'|[^\s&"'<>\0]+)`, 'gi'),
    (_m, name: string, sep: string, scheme: string | undefined, value: string) => {
      const quote = /^(\\"|"|')/.exec(value)?.[1] ?? '';
      const bare = quote ? value.slice(quote.length, -quote.length) : value;
      return `${name}${sep}${scheme ?? ''}${bare === REDACTED || bare === URL_PASSWORD_MASK ? value : `${quote}${REDACTED}${quote}`}`;
    },
  ],
  // Provider keys: OpenAI and OpenRouter (`sk-`, `sk-proj-`, `sk-or-v1-`), Tavily (any length), Google.
  [/\b(sk-(?:proj-|or-v1-|or-|ant-|svcacct-|admin-)?)[A-Za-z0-9_-]{8,}/g, `$1${REDACTED}`],
  [/\btvly-(?!\[REDACTED\])[A-Za-z0-9_-]+/g, `tvly-${REDACTED}`],
  [/\bAIza[0-9A-Za-z_-]{20,}/g, `AIza${REDACTED}`],
  [/\bya29\.[A-Za-z0-9._-]{8,}/g, `ya29.${REDACTED}`],
  // Tokens an operator's environment may hold besides brandq's own (a board error or a log
  // line that quotes the environment): GitHub, Slack, AWS key ids, JWTs, npm, Hugging Face,
  // GitLab, Stripe. The prefix stays, as for provider keys.
  [/\b(gh[pousr]_|github_pat_|xox[abposr]-|npm_|hf_|glpat-|[rs]k_(?:live|test)_)[A-Za-z0-9_-]{16,}/g, `$1${REDACTED}`],
  [/\b(AKIA|ASIA)[A-Z0-9]{16}\b/g, `$1${REDACTED}`],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, REDACTED],
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

const SECRET_NAME = new RegExp(String.raw`${SECRET_WORD}|token$|^pass$`, 'i');
/** `redisPass`: camelCase only, so `bypass` stays a plain word. */
const CAMEL_PASS = /[a-z]Pass$/;

/**
 * True for a field or variable name whose value is a credential: `apiKey`, `OPENAI_API_KEY`,
 * `password`, `authorization`, `accessToken`. Not the brand `key`, nor counts like `inputTokens`.
 */
export function isSecretName(name: string): boolean {
  return name !== 'key' && (SECRET_NAME.test(name) || CAMEL_PASS.test(name));
}
