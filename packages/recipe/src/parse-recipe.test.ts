import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '@brandq/errors';
import { defaultRecipe } from './default-recipe.js';
import { loadRecipeFile, parseRecipe } from './parse-recipe.js';
import { resultFields, type LlmStep } from './recipe.js';
import { RecipeError } from './recipe-error.js';

const recipesDir = fileURLToPath(new URL('../recipes/', import.meta.url));

/** A small valid recipe in the file format; each bad case below changes one thing. */
function validFile() {
  return {
    name: 'test',
    steps: [
      { id: 'search', type: 'search', query: '{{brand}} official site' },
      {
        id: 'facts',
        type: 'llm',
        prompt: 'Brand: {{brand}}\n{{results.search}}',
        fields: [
          { name: 'website', type: 'url', description: 'Official website' },
          { name: 'score', type: 'integer', description: 'A score', min: 0, max: 10 },
          { name: 'tier', type: 'enum', description: 'Tier', values: ['low', 'high'] },
        ],
      },
      { id: 'news', type: 'search', query: '{{brand}} {{field.website}} news', skip_if: { present: ['website'] } },
      { id: 'classify', type: 'llm', prompt: '{{field.tier}} {{results.news}}', fields: [{ name: 'label', type: 'string', description: 'Label' }] },
    ],
  };
}
type File = ReturnType<typeof validFile>;
type Step = Record<string, unknown>;
const step = (file: File, index: number) => file.steps[index] as Step;
const field = (file: File, index: number) => (step(file, 1).fields as Step[])[index] as Step;

function issuesOf(change: (file: File) => void) {
  const file = validFile();
  change(file);
  try {
    parseRecipe(JSON.stringify(file), 'bad.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(RecipeError);
    return error as RecipeError;
  }
  throw new Error('the recipe was accepted');
}

describe('parseRecipe', () => {
  it('accepts the valid base recipe, from JSON as from YAML', () => {
    expect(parseRecipe(JSON.stringify(validFile()), 'ok.json').steps.map((s) => s.id)).toEqual(['search', 'facts', 'news', 'classify']);
  });

  it('maps the snake_case file keys to the API and applies the defaults', () => {
    const recipe = parseRecipe(
      `
name: r
steps:
  - id: s
    type: search
    query: "  {{ brand }}  "
    depth: advanced
    max_results: 7
    include_domains: [example.com]
    exclude_domains: [spam.example]
  - id: l
    type: llm
    prompt: |
      Brand: {{brand}}
    max_output_tokens: 300
    model: gpt-x
    temperature: 0.5
    skip_if: { present: [hint.website] }
    fields:
      - { name: a, type: string, description: A }
      - { name: b, type: list, description: B, max_length: 20, required: true }
      - { name: c, type: url, description: C }
`,
      'r.yaml',
    );
    expect(recipe).toEqual({
      name: 'r',
      steps: [
        { id: 's', type: 'search', query: '{{ brand }}', depth: 'advanced', maxResults: 7, includeDomains: ['example.com'], excludeDomains: ['spam.example'] },
        {
          id: 'l',
          type: 'llm',
          prompt: 'Brand: {{brand}}',
          maxOutputTokens: 300,
          model: 'gpt-x',
          temperature: 0.5,
          finalize: false,
          skipIf: { present: ['hint.website'] },
          fields: [
            { name: 'a', type: 'string', description: 'A', required: false, maxLength: 1000 },
            { name: 'b', type: 'list', description: 'B', required: true, maxLength: 20 },
            { name: 'c', type: 'url', description: 'C', required: false },
          ],
        },
      ],
    });
  });

  it.each<[string, (file: File) => void, { step?: string; field?: string; message: RegExp }]>([
    ['a misspelt key', (f) => ((step(f, 1).feilds = step(f, 1).fields), delete step(f, 1).fields), { step: 'facts', message: /unknown key "feilds" \(did you mean "fields"\?\)/ }],
    ['a camelCase key', (f) => (step(f, 0).maxResults = 5), { step: 'search', message: /unknown key "maxResults" \(did you mean "max_results"\?\)/ }],
    ['an unknown key in a field', (f) => (field(f, 0).requred = true), { step: 'facts', field: 'website', message: /unknown key "requred"/ }],
    ['an unknown step type', (f) => (step(f, 0).type = 'scrape'), { step: 'search', message: /type must be "search" or "llm"/ }],
    ['a missing prompt', (f) => delete step(f, 1).prompt, { step: 'facts', message: /prompt is required/ }],
    ['an empty query', (f) => (step(f, 0).query = '   '), { step: 'search', message: /query: must not be empty/ }],
    ['an empty description', (f) => (field(f, 1).description = ''), { step: 'facts', field: 'score', message: /description: must not be empty/ }],
    ['a bad field name', (f) => (field(f, 1).name = 'Score'), { step: 'facts', field: 'Score', message: /name: must be snake_case/ }],
    ['a bad step id', (f) => (step(f, 3).id = 'Classify!'), { step: 'Classify!', message: /id: must start with a lowercase letter/ }],
    ['an unknown field type', (f) => (field(f, 0).type = 'date'), { step: 'facts', field: 'website', message: /type: / }],
    ['too many results', (f) => (step(f, 0).max_results = 21), { step: 'search', message: /max_results: / }],
    ['a temperature above 2', (f) => (step(f, 1).temperature = 3), { step: 'facts', message: /temperature: / }],
    ['too few output tokens', (f) => (step(f, 1).max_output_tokens = 8), { step: 'facts', message: /max_output_tokens: / }],
    ['min not below max', (f) => (field(f, 1).min = 10), { step: 'facts', field: 'score', message: /^min must be below max$/ }],
    ['min on a string', (f) => (field(f, 0).min = 1), { step: 'facts', field: 'website', message: /min and max apply only to number and integer fields/ }],
    ['an enum without values', (f) => delete field(f, 2).values, { step: 'facts', field: 'tier', message: /an enum field needs values/ }],
    ['an enum with no value', (f) => (field(f, 2).values = []), { step: 'facts', field: 'tier', message: /values: must list at least one value/ }],
    ['an enum value twice', (f) => (field(f, 2).values = ['low', 'LOW']), { step: 'facts', field: 'tier', message: /value "LOW" is listed twice/ }],
    ['values on a non-enum', (f) => (field(f, 0).values = ['x']), { step: 'facts', field: 'website', message: /values apply only to enum fields/ }],
    ['max_length on a url', (f) => (field(f, 0).max_length = 10), { step: 'facts', field: 'website', message: /max_length applies only to string and list fields/ }],
    ['a duplicate step id', (f) => (step(f, 2).id = 'search'), { step: 'search', message: /duplicate step id/ }],
    ['a field name used twice in the recipe', (f) => ((step(f, 3).fields as Step[])[0]!.name = 'score'), { step: 'classify', field: 'score', message: /duplicate field name/ }],
    ['a sources field in a step shown no search results', (f) => (((step(f, 3).fields as Step[])[0]!.type = 'sources'), (step(f, 3).prompt = 'Brand: {{brand}}')), { step: 'classify', field: 'label', message: /needs search results in the step's prompt/ }],
    ['a hint named with capitals (hint columns are snake_case)', (f) => (step(f, 3).skip_if = { present: ['hint.Country'] }), { step: 'classify', message: /"hint.Country" is not a hint column name/ }],
    ['a field named like an export column', (f) => ((step(f, 3).fields as Step[])[0]!.name = 'status'), { step: 'classify', field: 'status', message: /a column of its own beside the fields/ }],
    ['an unknown placeholder', (f) => (step(f, 1).prompt = 'Brand: {{company}}'), { step: 'facts', message: /prompt: unknown placeholder \{\{company\}\}/ }],
    ['an unknown placeholder kind', (f) => (step(f, 1).prompt = '{{result.search}}'), { step: 'facts', message: /prompt: unknown placeholder \{\{result\.search\}\}/ }],
    ['an unclosed placeholder', (f) => (step(f, 1).prompt = 'Brand: {{brand'), { step: 'facts', message: /prompt: "\{\{" without a matching "\}\}"/ }],
    ['results of a later search', (f) => (step(f, 1).prompt = '{{results.news}}'), { step: 'facts', message: /prompt: \{\{results\.news\}\} names no earlier search step/ }],
    ['results of an llm step', (f) => (step(f, 3).prompt = '{{results.facts}}'), { step: 'classify', message: /\{\{results\.facts\}\} names no earlier search step/ }],
    ['results in a query', (f) => (step(f, 2).query = '{{results.search}}'), { step: 'news', message: /query: \{\{results\.search\}\} cannot go into a search query/ }],
    ['a field of the same step', (f) => (step(f, 1).system = 'Known: {{field.score}}'), { step: 'facts', message: /system: \{\{field\.score\}\} names no field of an earlier llm step/ }],
    ['a field of a later step', (f) => (step(f, 2).query = '{{field.label}}'), { step: 'news', message: /query: \{\{field\.label\}\} names no field/ }],
    ['skip_if on a later field', (f) => (step(f, 2).skip_if = { present: ['label'] }), { step: 'news', message: /skip_if: "label" names no field of an earlier llm step/ }],
    ['skip_if on a bad hint name', (f) => (step(f, 2).skip_if = { present: ['hint.'] }), { step: 'news', message: /skip_if: "hint\." is not a hint column name/ }],
    ['skip_if naming nothing', (f) => (step(f, 2).skip_if = { present: [] }), { step: 'news', message: /skip_if\.present: must name at least one value/ }],
    ['no llm step', (f) => (f.steps = [step(f, 0) as never]), { message: /steps: at least one step must be an llm step/ }],
    ['more than 20 steps', (f) => (f.steps = [...f.steps, ...Array.from({ length: 17 }, (_, i) => ({ id: `s${i}`, type: 'search', query: 'q' }) as never)]), { message: /steps: must list at most 20 steps/ }],
  ])('rejects %s, naming where', (_, change, expected) => {
    const error = issuesOf(change);
    expect(error.issues).toContainEqual({ ...(expected.step && { step: expected.step }), ...(expected.field && { field: expected.field }), message: expect.stringMatching(expected.message) });
  });

  it('lists every issue in one message, one line each, naming the recipe, the step and the field', () => {
    const error = issuesOf((f) => {
      field(f, 1).min = 10;
      step(f, 1).prompt = '{{results.news}}';
    });
    expect(error).toBeInstanceOf(BadInputError);
    expect(error.message.split('\n')).toEqual([
      'recipe bad.yaml: step "facts": prompt: {{results.news}} names no earlier search step',
      'recipe bad.yaml: step "facts", field "score": min must be below max',
    ]);
  });

  it('rejects text that is neither YAML nor JSON, and a document that is not a recipe', () => {
    expect(() => parseRecipe('name: [unclosed', 'x.yaml')).toThrow(/^recipe x\.yaml: not valid YAML or JSON: /);
    expect(() => parseRecipe('name: a\nname: b\nsteps: []', 'x.yaml')).toThrow(/not valid YAML or JSON: .*unique/i);
    expect(() => parseRecipe('just text', 'x.yaml')).toThrow(RecipeError);
    expect(() => parseRecipe('', 'x.yaml')).toThrow(RecipeError);
  });
});

describe('loadRecipeFile', () => {
  it('reads a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'recipe-'));
    const path = join(dir, 'r.json');
    await writeFile(path, JSON.stringify(validFile()));
    expect((await loadRecipeFile(path)).name).toBe('test');
  });

  it('names a missing file in a RecipeError', async () => {
    const error = await loadRecipeFile('/nonexistent/r.yaml').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecipeError);
    expect((error as Error).message).toBe('recipe /nonexistent/r.yaml: file not found');
  });
});

describe('the shipped recipes', () => {
  it('brand-facts is the default recipe: one search, then the six facts, none required', async () => {
    const recipe = defaultRecipe();
    expect(recipe).toEqual(await loadRecipeFile(join(recipesDir, 'brand-facts.yaml')));
    expect(recipe.steps.map((s) => [s.id, s.type])).toEqual([['search', 'search'], ['facts', 'llm']]);
    expect(recipe.steps[0]).not.toHaveProperty('depth');
    expect(recipe.steps[0]).not.toHaveProperty('maxResults');
    expect(resultFields(recipe).map((f) => [f.name, f.type, f.required])).toEqual([
      ['website', 'url', false],
      ['category', 'string', false],
      ['description', 'string', false],
      ['country', 'string', false],
      ['founded_year', 'integer', false],
      ['sources', 'sources', false],
    ]);
  });

  it('defaultRecipe hands out a copy: changing one does not change the next', () => {
    (defaultRecipe().steps[1] as LlmStep).fields.pop();
    expect(resultFields(defaultRecipe())).toHaveLength(6);
  });

  it('brand-profile parses: two searches, the second skippable, and a finalize step', async () => {
    const recipe = await loadRecipeFile(join(recipesDir, 'brand-profile.yaml'));
    expect(recipe.steps.map((s) => s.id)).toEqual(['search', 'facts', 'market', 'classify']);
    expect(recipe.steps[2]?.skipIf).toEqual({ present: ['hint.segment', 'hint.audience'] });
    expect(recipe.steps[3]).toMatchObject({ type: 'llm', finalize: true });
    expect(resultFields(recipe).map((f) => f.name)).toEqual([
      'website', 'category', 'description', 'country', 'founded_year', 'sources', 'segment', 'audience', 'fit_score', 'rationale', 'evidence_urls',
    ]);
  });
});

describe('parseRecipe on hostile YAML', () => {
  it('refuses an alias bomb ("billion laughs") as a recipe error, not a crash', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefghij'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghij'[i]}`).join(', ')}]`), 'name: bomb', 'steps: []'].join('\n');
    expect(() => parseRecipe(bomb, 'bomb.yaml')).toThrow(RecipeError);
  });
});
