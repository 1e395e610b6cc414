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
