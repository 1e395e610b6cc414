import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakes } from '@brandq/fakes';
import { defaultRecipe, loadRecipeFile, type Recipe } from '@brandq/recipe';
import { createRedis, pings, redactUrl, startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, waitForExit, type SpawnedProcess } from '@brandq/testing/processes';

const WORKERS = 3;
/** A hang guard, not an expectation: the multi-step sample takes about a minute, longer on a busy machine. */
const FOLLOW_TIMEOUT_MS = 600_000;
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const sample = join(repoRoot, 'apps/demo/data/brands.csv');
const outDir = join(repoRoot, 'out');

const USAGE = `Usage: pnpm demo [--recipe <file>]

The whole brandq job on local fakes (no API keys): Redis, fake OpenAI and Tavily, ${WORKERS} worker
processes, the sample in apps/demo/data/brands.csv, live progress, the export to out/<run>.csv and
the cost summary per recipe step. Stops everything it started.

Options:
  --recipe <file>  the enrichment to run, a recipe file (.yaml or .json), e.g.
                   recipes/brand-profile.yaml (default: recipes/brand-facts.yaml)
  -h, --help       show this help
`;

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** A usage mistake: the demo prints it with the usage and exits 2, as the brandq CLI does. */
class DemoUsageError extends Error {}

/** The command line: `--recipe <file>` (a path from the current directory), or `--help`. */
function readArgs(argv: string[]): { help: boolean; recipe?: string } {
  try {
    const { values } = parseArgs({ args: argv, options: { recipe: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    return { help: values.help === true, ...(values.recipe === undefined ? {} : { recipe: resolve(values.recipe) }) };
  } catch (error) {
    throw new DemoUsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Redis from REDIS_URL when it answers, else a throwaway redis-server we own. */
async function resolveRedis(): Promise<{ url: string; owned?: RedisServerHandle }> {
  const given = process.env.REDIS_URL;
  if (given && (await pings(given, 1500))) {
    say(`redis: using ${redactUrl(given)}`);
    return { url: given };
  }
  if (given) say(`redis: ${redactUrl(given)} does not answer; starting a throwaway redis-server`);
  const owned = await startRedisServer();
  say(`redis: started a throwaway redis-server on ${owned.url}`);
  return { url: owned.url, owned };
}

async function main(argv: string[]): Promise<number> {
  const args = readArgs(argv);
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // Read (and checked) before anything starts: a recipe with a problem costs no Redis, no workers.
  const recipe: Recipe = args.recipe ? await loadRecipeFile(args.recipe) : defaultRecipe();
  const started = Date.now();
  say(`recipe: ${recipe.name} (steps: ${recipe.steps.map((s) => `${s.id} (${s.type})`).join(', ')})`);
  await mkdir(outDir, { recursive: true });
  const redis = await resolveRedis();
  const fakes = await startFakes({
    openai: { latencyMs: { min: 80, max: 300 }, seed: 7 },
    tavily: { latencyMs: { min: 40, max: 150 }, seed: 11 },
    sheets: {},
  });
  say(`fakes: OpenAI-compatible ${fakes.openai.url}, Tavily ${fakes.tavily.url}`);

  const env = {
    REDIS_URL: redis.url,
    OPENAI_BASE_URL: fakes.openai.url,
    OPENAI_API_KEY: 'sk-demo-local-fake',
    OPENAI_MODEL: 'gpt-4o-mini',
    TAVILY_BASE_URL: fakes.tavily.url,
    TAVILY_API_KEY: 'tvly-demo-local-fake',
    GOOGLE_SHEETS_ROOT_URL: fakes.sheets.url,
    GOOGLE_SHEETS_ACCESS_TOKEN: 'demo',
    OPENAI_RPM_LIMIT: '600',
    OPENAI_RPM_BURST: '20',
    OPENAI_TPM_LIMIT: '400000',
    OPENAI_MAX_CONCURRENCY: '6',
    TAVILY_RPM_LIMIT: '1000',
    TAVILY_RPM_BURST: '20',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
  };
  const workers: SpawnedProcess[] = [];
  const runId = `demo-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
  try {
    for (let i = 0; i < WORKERS; i++) workers.push(spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], env));
    say(`workers: started ${WORKERS} worker processes (pids ${workers.map((w) => w.child.pid).join(', ')})`);

    const recipeFlag = args.recipe ? ['--recipe', args.recipe] : [];
    const enqueue = spawnTs('apps/producer/src/enqueue.ts', ['--csv', sample, '--run', runId, ...recipeFlag, '--follow'], env, 'inherit');
    const code = await waitForExit(enqueue, FOLLOW_TIMEOUT_MS);
    if (code !== 0) throw new Error(`enqueue exited with ${code}`);

    const out = join(outDir, `${runId}.csv`);
    const exported = spawnTs('apps/producer/src/export.ts', ['--run', runId, '--out', out], env, 'inherit');
    if ((await waitForExit(exported, 30_000)) !== 0) throw new Error('export failed');

    const client = createRedis(redis.url, 'client');
    const runs = new RunStore(client);
    const [run, runRecipe] = await Promise.all([runs.getRun(runId), runs.getRecipe(runId)]);
    client.disconnect();
    const llmCalls = fakes.openai.ledger.entries().length;
    const searchCalls = fakes.tavily.ledger.entries().length;
    // The header as written: the export's columns are the run's recipe's fields.
    const header = (await readFile(out, 'utf8')).replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
    say('');
    say('[DEMO SUMMARY]');
    say(`  recipe: ${runRecipe.name}`);
    say(`  brands: ${run?.total ?? 0} (done ${run?.succeeded ?? 0}, failed ${run?.failed ?? 0}, rows skipped ${run?.skipped ?? 0})`);
    say(`  API calls received by the fakes: LLM ${llmCalls}, Tavily ${searchCalls}`);
    say(`  results: ${out}`);
    say(`  columns: ${header}`);
    say(`  elapsed: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // The cost summary per provider and per step was printed by the follow above.
    return run && run.succeeded + run.failed === run.total ? 0 : 1;
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => waitForExit(w, 30_000).catch(() => w.kill('SIGKILL'))));
    await fakes.close();
    await redis.owned?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof DemoUsageError) {
      process.stderr.write(`error: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
