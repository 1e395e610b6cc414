import { describe, expect, it } from 'vitest';
import { parseBatchInput } from './batch-input.js';

const LIMITS = { maxRequests: 50_000, maxBytes: 200_000_000 };
const ENDPOINT = '/v1/chat/completions';

function file(...lines: unknown[]): Buffer {
  return Buffer.from(lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
}

function line(customId: string, model = 'gpt-4o-mini'): Record<string, unknown> {
  return { custom_id: customId, method: 'POST', url: ENDPOINT, body: { model, messages: [{ role: 'user', content: 'Brand: X' }] } };
}

describe('parseBatchInput: the validating phase of a batch input file', () => {
  it('reads the requests of a valid file, skipping blank lines, with their 1-based line numbers and model', () => {
    const parsed = parseBatchInput(file(line('a'), '', line('b'), ''), ENDPOINT, LIMITS);
    expect(parsed).toEqual({
      model: 'gpt-4o-mini',
      lines: [expect.objectContaining({ customId: 'a', line: 1 }), expect.objectContaining({ customId: 'b', line: 3 })],
    });
  });

  it('fails a file mixing models, a line without custom_id or POST, and an empty file', () => {
    const mixed = parseBatchInput(file(line('a'), line('b', 'gpt-4o'), { ...line('c'), method: 'GET' }, { method: 'POST' }), ENDPOINT, LIMITS);
    expect('errors' in mixed && mixed.errors.map((e) => [e.code, e.line, e.param])).toEqual([
      ['model_mismatch', 2, 'body.model'],
      ['invalid_request', 3, 'method'],
      ['invalid_request', 4, 'custom_id'],
    ]);
    const empty = parseBatchInput(Buffer.from('\n\n'), ENDPOINT, LIMITS);
    expect('errors' in empty && empty.errors.map((e) => e.code)).toEqual(['empty_file']);
  });

  it('applies the request and byte limits to the whole file before reading lines', () => {
    const two = file(line('a'), line('b'));
    const tooMany = parseBatchInput(two, ENDPOINT, { ...LIMITS, maxRequests: 1 });
    expect('errors' in tooMany && tooMany.errors.map((e) => e.code)).toEqual(['too_many_tasks']);
    const tooBig = parseBatchInput(two, ENDPOINT, { ...LIMITS, maxBytes: two.length - 1 });
    expect('errors' in tooBig && tooBig.errors.map((e) => e.code)).toEqual(['file_too_large']);
    expect('lines' in parseBatchInput(two, ENDPOINT, { maxRequests: 2, maxBytes: two.length })).toBe(true);
  });
});
