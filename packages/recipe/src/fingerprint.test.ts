import { describe, expect, it } from 'vitest';
import { parseRecipe } from './parse-recipe.js';
import { recipeFingerprint } from './fingerprint.js';

const yaml = `
name: r
steps:
  - id: s
    type: search
    query: "{{brand}} site"
  - id: l
    type: llm
    prompt: "Brand: {{brand}}\\n{{results.s}}"
    fields:
      - { name: a, type: string, description: A }
      - { name: n, type: integer, description: N, min: 0, max: 9 }
`;
const fingerprint = (text: string) => recipeFingerprint(parseRecipe(text, 'r.yaml'));

describe('recipeFingerprint', () => {
  it("ignores an LLM step's tier: how its calls are paid for is not what they ask", () => {
    const tiered = yaml.replace('    type: llm\n', '    type: llm\n    tier: batch\n');
    expect(tiered).not.toBe(yaml);
    expect(parseRecipe(tiered, 'r.yaml').steps[1]).toMatchObject({ tier: 'batch' });
    expect(fingerprint(tiered)).toBe(fingerprint(yaml));
    expect(() => parseRecipe(yaml.replace('    type: llm\n', '    type: llm\n    tier: cheap\n'), 'r.yaml')).toThrow(/tier must be standard, flex or batch/);
  });

  it('is a sha256 hex digest', () => {
    expect(fingerprint(yaml)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not change with key order, layout, format or spelled-out defaults', () => {
    const reordered = JSON.stringify({
      steps: [
        { query: '{{brand}} site', type: 'search', id: 's' },
        {
          fields: [
            { description: 'A', type: 'string', name: 'a', required: false, max_length: 1000 },
            { max: 9, min: 0, description: 'N', type: 'integer', name: 'n' },
          ],
          finalize: false,
          prompt: 'Brand: {{brand}}\n{{results.s}}\n',
          type: 'llm',
          id: 'l',
        },
      ],
      name: 'r',
    });
    expect(fingerprint(reordered)).toBe(fingerprint(yaml));
  });

  it.each([
    ['the query', (t: string) => t.replace('{{brand}} site', '{{brand}} shop')],
    ['the prompt', (t: string) => t.replace('Brand: {{brand}}', 'Name: {{brand}}')],
    ['a field description', (t: string) => t.replace('description: A', 'description: B')],
    ['a bound', (t: string) => t.replace('max: 9', 'max: 10')],
    ['required', (t: string) => t.replace('description: A }', 'description: A, required: true }')],
    ['a field type', (t: string) => t.replace('type: string', 'type: url')],
    ['a model', (t: string) => t.replace('type: llm', 'type: llm\n    model: m2')],
    ['the recipe name', (t: string) => t.replace('name: r', 'name: r2')],
    ['the order of fields', (t: string) => t.replace(/( {6}- \{ name: a.*\n)( {6}- \{ name: n.*\n)/, '$2$1')],
  ])('changes with %s', (_, change) => {
    const changed = change(yaml);
    expect(changed).not.toBe(yaml);
    expect(fingerprint(changed)).not.toBe(fingerprint(yaml));
  });
});
