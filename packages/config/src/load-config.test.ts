import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@brandq/errors';
import { loadConfig } from './load-config.js';
import { envSchema } from './schema.js';

describe('loadConfig', () => {
  it('gives every variable its documented default on an empty environment', () => {
    const config = loadConfig({});
    expect(config.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(config.OPENAI_MAX_CONCURRENCY).toBe(3);
    expect(config.OPENAI_TPM_HEADROOM).toBe(0.15);
    expect(config.OPENAI_STAGGER_SECONDS).toBe(0);
    expect(config.FINALIZE_LOWERS_CONCURRENCY).toBe(true);
    expect(config.TAVILY_COST_PER_CREDIT).toBe(0.008);
    expect(config.LLM_PRICING['gpt-4o-mini']).toEqual({ inputPerMillion: 0.15, outputPerMillion: 0.6 });
  });

  it('names each bad variable, all at once, and hides secrets in the message', () => {
    let error: unknown;
    try {
      loadConfig({ OPENAI_TPM_HEADROOM: '2', WORKER_CONCURRENCY: 'many', REDIS_URL: 'not a url', FINALIZE_LOWERS_CONCURRENCY: 'maybe' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/OPENAI_TPM_HEADROOM: must be <= 0.95, got 2/);
    expect(message).toMatch(/WORKER_CONCURRENCY: expected a number, got "many"$/m);
    expect(message).not.toMatch(/\(got "many"\)/);
    expect(message).toMatch(/REDIS_URL: expected a URL/);
    expect(message).toMatch(/FINALIZE_LOWERS_CONCURRENCY: expected true or false/);
    expect((error as ConfigError).details.variables).toEqual(
      expect.arrayContaining(['OPENAI_TPM_HEADROOM', 'WORKER_CONCURRENCY', 'REDIS_URL', 'FINALIZE_LOWERS_CONCURRENCY']),
    );
  });

  it('parses the pricing table and rejects malformed JSON with the variable name', () => {
    const config = loadConfig({ LLM_PRICING: '{"my-model":{"inputPerMillion":1,"outputPerMillion":2}}' });
    expect(config.LLM_PRICING['my-model']).toEqual({ inputPerMillion: 1, outputPerMillion: 2 });
    expect(() => loadConfig({ LLM_PRICING: '{oops' })).toThrow(/LLM_PRICING: expected JSON/);
  });

  it('accepts a Redis Cluster seed list in REDIS_URL, and refuses a malformed one', () => {
    expect(loadConfig({ REDIS_URL: 'redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001' }).REDIS_URL).toBe('redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001');
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://10.0.0.1' })).toThrow(/REDIS_URL: expected a URL such as redis:\/\/127\.0\.0\.1:6379, or redis\+cluster/);
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://:hunter2@10.0.0.1' })).not.toThrow(/hunter2/);
  });

  it('shows a bad value through the shared redactor: a URL password holding @ and : stays hidden, secret variables show nothing', () => {
    let message = '';
    try {
      loadConfig({ REDIS_URL: 'redis://:p@ss:w0rd@host:notaport', BOARD_PASSWORD: ' ', OPENAI_TPM_HEADROOM: 'sk-proj-abcdefgh12345678' });
    } catch (err) {
      message = (err as ConfigError).message;
    }
    expect(message).toContain('REDIS_URL: expected a URL');
    expect(message).toContain('redis://:***@host:notaport');
    expect(message).toMatch(/OPENAI_TPM_HEADROOM: expected a number/);
    for (const secret of ['w0rd', 'p@ss', 'abcdefgh12345678']) expect(message).not.toContain(secret);
  });

  it('binds worker metrics to loopback and reads the extra hosts the board answers to', () => {
    expect(loadConfig({}).METRICS_HOST).toBe('127.0.0.1');
    expect(loadConfig({}).BOARD_ALLOWED_HOSTS).toEqual([]);
    expect(loadConfig({ METRICS_HOST: '0.0.0.0', BOARD_ALLOWED_HOSTS: ' Board.Example.com , board:3000,' })).toMatchObject({
      METRICS_HOST: '0.0.0.0',
      BOARD_ALLOWED_HOSTS: ['board.example.com', 'board:3000'],
    });
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ OPENAI_MODEL: '', WORKER_CONCURRENCY: ' ' }).WORKER_CONCURRENCY).toBe(4);
  });
});

describe('.env.example', () => {
  it('documents every variable the schema reads, with its default', () => {
    const example = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    const missing = Object.keys(envSchema.shape).filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
  });
});
