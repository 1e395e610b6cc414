import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnTs, waitForExit } from '@brandq/testing/processes';

/** `pnpm demo <args>` as a real process: its exit code and everything it printed. */
async function demo(args: string[]): Promise<{ code: number | string; output: string }> {
  const proc = spawnTs('apps/demo/src/main.ts', args);
  const code = await waitForExit(proc, 30_000);
  return { code, output: proc.output() };
}

// The full demo (Redis, fakes, workers, 122 brands) is what `pnpm demo` shows; the worker's
// recipe-run.test.ts covers a multi-step recipe end to end. These cover the demo's command line.
describe('pnpm demo', () => {
  it('--help describes --recipe and starts nothing', async () => {
    const { code, output } = await demo(['--help']);
    expect(code).toBe(0);
    expect(output).toMatch(/--recipe <file>\s+the enrichment to run/);
    expect(output).toContain('recipes/brand-profile.yaml');
    expect(output).not.toContain('redis:');
  });

  it('refuses an unknown option as a usage mistake (exit 2)', async () => {
    const { code, output } = await demo(['--recipes', 'x.yaml']);
    expect(code).toBe(2);
    expect(output).toContain("Unknown option '--recipes'");
    expect(output).toContain('Usage: pnpm demo [--recipe <file>]');
  });

  it('--help describes --llm-tier and its three tiers', async () => {
    const { code, output } = await demo(['--help']);
    expect(code).toBe(0);
    expect(output).toContain('Usage: pnpm demo [--recipe <file>] [--llm-tier <standard|flex|batch>]');
    expect(output).toMatch(/--llm-tier <tier>\s+how the LLM steps are served and billed/);
    expect(output).toMatch(/standard \(default\), flex .* or batch/s);
  });

  it('refuses an --llm-tier that is not a tier as a usage mistake (exit 2) before starting anything', async () => {
    const { code, output } = await demo(['--llm-tier', 'cheap']);
    expect(code).toBe(2);
    expect(output).toContain('error: --llm-tier must be one of standard, flex, batch, got "cheap"');
    expect(output).toContain('Usage: pnpm demo');
    expect(output).not.toContain('redis:');
  });

  it('refuses --llm-tier without a value as a usage mistake (exit 2)', async () => {
    const { code, output } = await demo(['--llm-tier']);
    expect(code).toBe(2);
    expect(output).toContain("Option '--llm-tier <value>' argument missing");
    expect(output).not.toContain('redis:');
  });

  it('takes a tier in any case: with a valid --llm-tier the demo goes on to check the recipe', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brandq-demo-'));
    const recipe = join(dir, 'broken.yaml');
    await writeFile(recipe, 'name: broken\nsteps: []\n');
    const { code, output } = await demo(['--llm-tier', ' Batch ', '--recipe', recipe]);
    expect(code).toBe(1);
    expect(output).not.toContain('--llm-tier must be one of');
    expect(output).toContain(`recipe ${recipe}:`);
    expect(output).not.toContain('redis:');
  });

  it('checks the recipe before starting anything: a recipe with a problem ends it with the problem named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brandq-demo-'));
    const recipe = join(dir, 'broken.yaml');
    await writeFile(recipe, 'name: broken\nsteps:\n  - id: facts\n    type: llm\n    prompt: "Brand: {{brand}}"\n    fields:\n      - { name: website, type: url }\n');
    const { code, output } = await demo(['--recipe', recipe]);
    expect(code).toBe(1);
    expect(output).toContain(`recipe ${recipe}: step "facts", field "website": description is required`);
    expect(output).not.toContain('redis:');
  });
});
