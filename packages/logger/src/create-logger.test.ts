import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './create-logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { destination, lines, text: () => lines.join('\n') };
}

describe('log redaction', () => {
  it('censors API keys and Authorization headers wherever they are nested', () => {
    const out = capture();
    const log = createLogger({ name: 't', destination: out.destination });
    log.info({ apiKey: 'sk-live-abcdefghijk', request: { headers: { authorization: 'Bearer sk-live-abcdefghijk' } }, config: { OPENAI_API_KEY: 'sk-x', TAVILY_API_KEY: 'tvly-y' } }, 'calling');
    expect(out.text()).not.toContain('abcdefghijk');
    expect(out.text()).not.toContain('tvly-y');
    const record = JSON.parse(out.lines[0] ?? '{}') as { apiKey: string; request: { headers: { authorization: string } } };
    expect(record.apiKey).toBe('[REDACTED]');
    expect(record.request.headers.authorization).toBe('[REDACTED]');
  });

  it('masks keys that appear inside messages and error texts', () => {
    const out = capture();
    const log = createLogger({ name: 't', destination: out.destination });
    log.error({ err: new Error('401 Incorrect API key provided: sk-proj-1234567890abcdef') }, 'key tvly-dev-secret123 was refused');
    expect(out.text()).not.toContain('1234567890abcdef');
    expect(out.text()).not.toContain('dev-secret123');
    expect(out.text()).toContain('[REDACTED]');
  });

  it('masks URL passwords, PEM keys (with or without END line) and secret-named fields at any depth', () => {
    const out = capture();
    const log = createLogger({ name: 't', destination: out.destination });
    log.warn({ redis: 'redis://:p@ss:w0rd@cache:6379', deep: { a: { b: { client_secret: 'cs-SECRET-1' } } } }, 'connecting');
    log.error({ err: new Error('bad key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq') }, 'password=hunter2 refused');
    const text = out.text();
    for (const secret of ['w0rd', 'cs-SECRET-1', 'MIIEvQIBADANBgkq', 'hunter2']) expect(text).not.toContain(secret);
    const [first, second] = out.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({ redis: 'redis://:***@cache:6379', deep: { a: { b: { client_secret: '[REDACTED]' } } }, msg: 'connecting' });
    // The error stays an error in the log: its type, message and stack, masked.
    expect(second).toMatchObject({ err: { type: 'Error', message: 'bad key [REDACTED]' }, msg: 'password=[REDACTED] refused' });
    expect((second?.['err'] as { stack: string }).stack).toMatch(/create-logger\.test\.ts/);
  });
});

describe('log redaction, as found in the review of issue 13', () => {
  it("masks the message pino takes from an error when the call gives none (log.error(err), log.error({ err }))", () => {
    const out = capture();
    const log = createLogger({ name: 't', destination: out.destination });
    log.error(new Error('refused password=hunter2-bare'));
    log.error({ err: new Error('cannot reach redis://:redis-pw-err@cache:6379') });
    expect(out.lines).toHaveLength(2);
    for (const secret of ['hunter2-bare', 'redis-pw-err']) expect(out.text()).not.toContain(secret);
    expect(JSON.parse(out.lines[0] ?? '{}')).toMatchObject({ msg: 'refused password=[REDACTED]' });
  });

  it("masks a child logger's bindings, not only the well-known paths", () => {
    const out = capture();
    const log = createLogger({ name: 't', destination: out.destination }).child({ redis: 'redis://:child-pw-1@cache:6379', cfg: { GITHUB_TOKEN: 'child-token-2' } });
    log.info('connected');
    expect(out.text()).not.toMatch(/child-pw-1|child-token-2/);
    expect(JSON.parse(out.lines[0] ?? '{}')).toMatchObject({ redis: 'redis://:***@cache:6379', msg: 'connected' });
  });

  it('logs a record holding a URL or a Buffer (pino path redaction threw on their getters) and masks the URL', () => {
    const out = capture();
    const log = createLogger({ name: 't', destination: out.destination });
    expect(() => log.info({ body: Buffer.from('x'), nested: { at: new URL('https://example.com') } }, 'buffer')).not.toThrow();
    expect(() => log.info({ redis: new URL('redis://:url-pw-3@cache:6379') }, 'url')).not.toThrow();
    expect(out.lines).toHaveLength(2);
    expect(out.text()).not.toContain('url-pw-3');
    expect(JSON.parse(out.lines[1] ?? '{}')).toMatchObject({ redis: 'redis://:***@cache:6379' });
  });
});
