import { describe, expect, it } from 'vitest';
import { BadInputError } from '@brandq/errors';
import { loadCsvText } from './load-csv-text.js';

describe('loadCsvText', () => {
  it('reads brands from CSV content, named by its hash: the same content is the same source', () => {
    const text = 'brand,country\nAcme,US\nGlobex,DE\n';
    const loaded = loadCsvText({ csvText: text, limit: 1 });
    expect(loaded.brands.map((b) => b.name)).toEqual(['Acme']);
    expect(loaded.sourceKey).toMatch(/^csv-text:sha256:[0-9a-f]{64}$/);
    expect(loaded.source).toEqual({ type: 'csv', path: expect.stringMatching(/^upload:sha256:[0-9a-f]{16}$/) as string });
    expect(loadCsvText({ csvText: text }).sourceKey).toBe(loaded.sourceKey);
    expect(loadCsvText({ csvText: `${text}Initech,US\n` }).sourceKey).not.toBe(loaded.sourceKey);
  });

  it('never treats the text as a path', () => {
    expect(() => loadCsvText({ csvText: '/etc/passwd' })).toThrow(BadInputError);
    expect(() => loadCsvText({ csvText: '/etc/passwd' })).toThrow(/the CSV text/);
  });
});
