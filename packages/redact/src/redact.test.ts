import { describe, expect, it } from 'vitest';
import { REDACTED, isSecretName, redactText, redactUrl, redactValue } from './index.js';

/**
 * Every form of credential brandq has seen leak, or could: each row is the text, the secret
 * part that must be gone, and (where it matters) what the reader still sees.
 */
const TEXT_CASES: ReadonlyArray<{ form: string; text: string; secret: string; shows?: string }> = [
  { form: 'URL password', text: 'redis://default:s3cr3t-redis-pw@redis:6379/0', secret: 's3cr3t-redis-pw', shows: 'redis://default:***@redis:6379/0' },
  { form: "URL password holding '@' and ':'", text: 'cannot reach redis://:p@ss:w0rd@host:6379', secret: 'w0rd', shows: 'cannot reach redis://:***@host:6379' },
  { form: 'URL password, no user, cluster seed list', text: 'redis+cluster://:hunter2@a:1,b:2', secret: 'hunter2', shows: 'redis+cluster://:***@a:1,b:2' },
  { form: 'URL password from the secrets test', text: 'redis://:redis-SECRET-pw-31337@127.0.0.1:6379', secret: 'SECRET-pw-31337' },
  {
    form: 'PEM key with its END line',
    text: 'key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY----- done',
    secret: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
    shows: 'done',
  },
  { form: 'PEM key cut before its END line', text: 'oops -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7vbqajDw\nQm9vZ3Vz', secret: 'Qm9vZ3Vz' },
  { form: 'PEM key cut short, then a stack trace', text: 'Error: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n    at load (keys.ts:1:2)', secret: 'MIIEvQIBADAN', shows: 'at load (keys.ts:1:2)' },
  { form: 'encrypted PEM key with headers', text: '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,ABC\n\nMIIEpQIBAAKCAQEAzz', secret: 'MIIEpQIBAAKCAQEAzz' },
  { form: 'PEM key, JSON-escaped newlines', text: '"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n-----END PRIVATE KEY-----\\n"', secret: 'MIIEvQIBADAN' },
  { form: 'Google API key', text: 'GET https://sheets.googleapis.com/v4?key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY', secret: 'SyD-9tSrke72PouQMnMX' },
  { form: 'Google access token', text: 'token ya29.SECRET-sheets-token-0042 expired', secret: 'SECRET-sheets-token' },
  { form: 'password= in free text', text: 'login failed for password=hunter2 user=ops', secret: 'hunter2', shows: 'user=ops' },
  { form: 'secret: in free text', text: 'client secret: s3kr1t-value, retrying', secret: 's3kr1t-value', shows: 'retrying' },
  { form: 'quoted password in free text', text: "set PASSWORD='two words'", secret: 'two words' },
  { form: 'env dump (/proc/self/environ)', text: 'HOME=/root\0OPENAI_API_KEY=sk-x\0BOARD_PASSWORD=board-SECRET-pw-4242\0TERM=xterm', secret: 'SECRET-pw-4242', shows: 'TERM=xterm' },
  { form: 'short tvly- key', text: 'tavily said no to tvly-y', secret: 'tvly-y' },
  { form: 'long tvly- key', text: 'key tvly-dev-SECRET987654abcdef was refused', secret: 'SECRET987654' },
  { form: 'sk- key', text: 'HTTP 401: Incorrect API key provided: sk-test-SECRET123456', secret: 'SECRET123456', shows: 'Incorrect API key provided' },
  { form: 'sk-proj- key', text: 'sk-proj-1234567890abcdefXYZ', secret: '1234567890abcdef' },
  { form: 'sk-or-v1- key (OpenRouter)', text: 'openrouter sk-or-v1-0123456789abcdef0123', secret: '0123456789abcdef' },
  { form: 'wrong key echoed by the provider', text: 'sk-test-WRONGKEY-998877', secret: 'WRONGKEY-998877' },
  { form: 'Bearer token', text: 'Authorization: Bearer abc.def.ghijklmnop', secret: 'ghijklmnop', shows: 'Authorization: Bearer [REDACTED]' },
  { form: 'Bearer token alone', text: 'sent bearer eyJhbGciOiJIUzI1NiJ9.payload', secret: 'eyJhbGciOiJIUzI1NiJ9' },
  { form: 'Basic credentials', text: 'header Basic dXNlcjpwYXNz', secret: 'dXNlcjpwYXNz' },
  { form: 'JSON field named like a secret, inside text', text: 'bad request {"api_key":"plain-value-1","brand":"Acme"}', secret: 'plain-value-1', shows: '"brand":"Acme"' },
  { form: 'JSON password field with an escaped quote', text: '{"password": "a\\"b-c"}', secret: 'b-c' },
  // Seen getting through in the review of issue 13:
  { form: 'JSON quoted inside a JSON string (escaped quotes)', text: '{"body":"{\\"password\\":\\"hunter2-esc\\",\\"brand\\":\\"Acme\\"}"}', secret: 'hunter2-esc', shows: '\\"brand\\":\\"Acme\\"' },
  { form: 'URL-encoded password= (a query inside a query)', text: 'redirect=%2Flogin%3Fpassword%3Dhunter2-enc%26next%3D1', secret: 'hunter2-enc' },
  { form: 'password holding commas and semicolons', text: 'BOARD_PASSWORD=pw,SECRET;tail', secret: 'SECRET;tail' },
  { form: '*_PASS variable', text: 'REDIS_PASS=hunter2-pass\0DB_PASS=s3cr3t-db', secret: 'hunter2-pass', shows: 'DB_PASS=[REDACTED]' },
  { form: 'pass= in a query string', text: 'GET /login?user=ops&pass=hunter2-query', secret: 'hunter2-query', shows: 'user=ops' },
  { form: '*_TOKEN variable', text: 'GITHUB_TOKEN=some-SECRET-token\0NPM_TOKEN=npm-SECRET-2', secret: 'SECRET', shows: 'GITHUB_TOKEN=[REDACTED]' },
  { form: 'token= in a URL', text: 'fetch https://hooks.example.com/x?token=abcd1234efgh failed', secret: 'abcd1234efgh' },
  { form: 'GitHub token', text: 'remote https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/x', secret: 'abcdefghijklmnopqrstuvwxyz' },
  { form: 'GitHub fine-grained token', text: 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz', secret: '0123456789_abcdefghijklmnop' },
  { form: 'Slack token', text: 'slack said invalid_auth for xoxb-1234567890-0987654321-AbCdEfGhIjKl', secret: '0987654321-AbCdEfGhIjKl' },
  { form: 'AWS access key id', text: 'signed by AKIAIOSFODNN7EXAMPLE at', secret: 'IOSFODNN7EXAMPLE' },
  { form: 'JWT', text: 'id token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZw was refused', secret: 'eyJzdWIiOiIxMjM0NTY3ODkwIn0' },
  { form: 'npm, Hugging Face, GitLab and Stripe tokens', text: 'npm_abcdefghijklmnopqrstuvwxyz0123456789 hf_abcdefghijklmnopqrstuvwxyzABCD glpat-abcdefghij0123456789 sk_live_abcdefghijklmnop1234', secret: 'abcdefghij' },
];

describe('redactText: every credential form', () => {
  it.each(TEXT_CASES)('$form', ({ text, secret, shows }) => {
    const out = redactText(text);
    expect(out).not.toContain(secret);
    expect(out).toMatch(/\[REDACTED\]|\*\*\*/);
    if (shows) expect(out).toContain(shows);
  });

  it('leaves ordinary text alone', () => {
    for (const text of [
      'brand skate-shop and tvly search',
      'Basic authentication required',
      'llm tokens: 1200, inputTokens=300',
      'https://example.com:8443/path?email=a@b.com',
      'Acme Corp, <img src=x onerror=alert(1)>',
      'no brand column: expected one of brand, brand_name, name',
      'estimate: tokensPerCall=7000, maxTokens: 1200, tokenizer=o200k, OPENAI_TOKEN_COUNTING=estimate',
      'the passenger passed: bypass mode',
    ]) {
      expect(redactText(text), text).toBe(text);
    }
  });

  it('is idempotent: masking masked text changes nothing', () => {
    for (const { text } of TEXT_CASES) expect(redactText(redactText(text))).toBe(redactText(text));
  });
});

describe('redactUrl', () => {
  it('hides only the password', () => {
    expect(redactUrl('redis://:p@ss:w0rd@host:6379/0')).toBe('redis://:***@host:6379/0');
    expect(redactUrl('rediss://user:pw@cache.internal:6380')).toBe('rediss://user:***@cache.internal:6380');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});

describe('redactValue', () => {
  it('masks fields named like secrets at any depth and credential text in every string; keeps brand keys and counts', () => {
    const shown = redactValue({
      key: 'acme',
      name: 'Acme',
      inputTokens: 1200,
      hints: { apiKey: 'anything', OPENAI_API_KEY: 'x', country: 'US', password: 'hunter2-password', 'x-api-key': 'k' },
      nested: [{ authorization: 'Basic dXNlcjpwYXNz' }, { accessToken: 'ya29.a0AfB_secretAccessToken' }, { client_secret: 'cs' }],
      message: 'HTTP 401: Incorrect API key provided: sk-live-abcdefgh12345678',
      url: 'redis://default:s3cr3t-redis-pw@redis:6379/0',
      empty: { token: '' },
    });
    const text = JSON.stringify(shown);
    for (const secret of ['anything', 'hunter2-password', 'dXNlcjpwYXNz', 'secretAccessToken', 'abcdefgh12345678', 's3cr3t-redis-pw']) expect(text).not.toContain(secret);
    expect(shown).toMatchObject({
      key: 'acme',
      name: 'Acme',
      inputTokens: 1200,
      hints: { apiKey: REDACTED, OPENAI_API_KEY: REDACTED, country: 'US', password: REDACTED, 'x-api-key': REDACTED },
      nested: [{ authorization: REDACTED }, { accessToken: REDACTED }, { client_secret: REDACTED }],
      url: 'redis://default:***@redis:6379/0',
      empty: { token: '' },
    });
  });

  it("redacts a brand's key slug like its name, wherever the slug appears (the job id)", () => {
    const job = {
      id: 'run-1.board-password-hunter2-1a2b',
      name: 'brand',
      data: { runId: 'run-1', key: 'board-password-hunter2-1a2b', name: 'BOARD_PASSWORD=hunter2' },
    };
    const shown = redactValue(job) as typeof job;
    expect(JSON.stringify(shown)).not.toContain('hunter2');
    expect(shown.data).toEqual({ runId: 'run-1', key: REDACTED, name: `BOARD_PASSWORD=${REDACTED}` });
    expect(shown.id).toBe(`run-1.${REDACTED}`);
    // An ordinary brand keeps its key.
    expect(redactValue({ key: 'acme-1f2e', name: 'Acme' })).toEqual({ key: 'acme-1f2e', name: 'Acme' });
  });

  it('keeps an error an error of its class, with its message and stack masked', () => {
    const shown = redactValue({ err: new TypeError('401 for sk-proj-1234567890abcdef') }) as { err: Error };
    expect(shown.err).toBeInstanceOf(TypeError);
    expect(shown.err.message).toBe(`401 for sk-proj-${REDACTED}`);
    expect(shown.err.stack).not.toContain('1234567890abcdef');
  });

  it('masks what a value serializes to (a URL is its href) and hands pino no URL or Buffer, whose getters break its path redaction', () => {
    const shown = redactValue({ redis: new URL('redis://:url-SECRET-pw@cache:6379'), body: Buffer.from('hi') }) as Record<string, unknown>;
    expect(shown).toEqual({ redis: 'redis://:***@cache:6379', body: { type: 'Buffer', data: [104, 105] } });
  });

  it('keeps values that serialize themselves (dates) as they are, shows a shared value twice and cuts only cycles', () => {
    const at = new Date('2026-01-02T03:04:05Z');
    const shared = { country: 'US' };
    expect(redactValue({ at, list: [at], a: shared, b: shared })).toEqual({ at, list: [at], a: shared, b: shared });
    const loop: Record<string, unknown> = { name: 'loop' };
    loop['self'] = loop;
    expect(redactValue(loop)).toEqual({ name: 'loop', self: '[Circular]' });
  });

  it('names secrets by their field name', () => {
    for (const name of ['OPENAI_API_KEY', 'TAVILY_API_KEY', 'BOARD_PASSWORD', 'GOOGLE_SHEETS_ACCESS_TOKEN', 'apiKey', 'authorization', 'x-api-key', 'private_key', 'client_secret', 'GITHUB_TOKEN', 'REDIS_PASS', 'redisPass', 'pass']) {
      expect(isSecretName(name), name).toBe(true);
    }
    for (const name of ['key', 'name', 'inputTokens', 'outputTokens', 'tokensPerCall', 'tokenCount', 'OPENAI_TOKEN_COUNTING', 'REDIS_URL', 'BOARD_USER', 'keyFile', 'bypass', 'passes']) expect(isSecretName(name), name).toBe(false);
  });
});
