import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import { DEFAULT_WEIGHT, MAX_WEIGHT } from '@brandq/fair-share';
import { appEntry } from './app-entry.js';
import { checkpointCommand } from './checkpoint-command.js';
import { enqueueCommand } from './enqueue-and-follow.js';
import type { EnqueueFlags } from './enqueue-command.js';
import { EXIT_CODES_HELP } from './exit-codes.js';
import { exportCommand } from './export-command.js';
import { failedCommand } from './failed-command.js';
import { fleetRunCommand, type FleetRunFlags } from './fleet-run-command.js';
import { dollars, duration, llmTier, maxRpm, maxRpmOrNone, positiveInt, weight } from './option-values.js';
import { runsListCommand, runsPruneCommand, runsSetCommand, type RunsSetFlags } from './runs-command.js';
import { statusCommand, type StatusFlags } from './status-command.js';

/** What an action leaves: an exit code, or a long-running app (worker, board) that exits on its own. */
export type ActionResult = number | 'running';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** The flags that pick and shape the brands of a run: `brandq enqueue` and `brandq run` both take them. */
function enqueueOptions(command: Command): Command {
  return command
    .option('--csv <file>', 'CSV with a header row and a brand column (brand, brand_name or name)')
    .option('--column <name>', 'CSV column holding the brand name')
    .option('--sheet <id>', 'Google Sheet id (read with values.get)')
    .option('--range <A1>', 'sheet range of brand names', 'Brands!A2:A')
    .option('--result-column <col>', 'first sheet column for results (default: right of the range)')
    .option('--limit <n>', 'only the first n valid brands', positiveInt('--limit'))
    .option('--run <id>', 'run id (default: generated); enqueueing an existing run adds what is missing')
    .option('--budget <usd>', 'hard budget for the run\'s paid calls (with --resume: replaces the old one)', dollars('--budget'))
    .option('--resume', 'continue the latest run of this source (or --run): processed brands are skipped, the cost so far is carried')
    .option('--recipe <file>', 'the enrichment to run, a recipe file (.yaml or .json; default: recipes/brand-facts.yaml); a resume keeps the run\'s own')
    .option('--force', 'reprocess brands that already have results of this recipe in an earlier run of this source; with --recipe on an existing run, switch it to that recipe')
    .option('--retry-failed', 're-enqueue the failed brands of --run')
    .option('--no-cache', 'make every call even when a cached answer exists')
    .option('--allow-partial', 'enqueue even when the estimate is above the budget (the budget still holds)')
    .option('--weight <n>', `the run's share of the fleet against the other runs with work: weight / the sum of their weights (1..${MAX_WEIGHT}, default ${DEFAULT_WEIGHT}; change it later with brandq runs set)`, weight('--weight'))
    .option('--max-rpm <n>', 'the run\'s own ceiling: at most n calls per minute at each provider, under the provider\'s limit (default: none)', maxRpm('--max-rpm'))
    .option('--llm-tier <tier>', 'how the LLM steps are served and billed: standard, flex (half price, slower, may wait for capacity) or batch (half price, results within 24 h); a recipe step\'s own tier wins (default: standard)', llmTier('--llm-tier'))
    .option('--flex-fallback-after <duration>', 'with flex: a brand\'s call refused for capacity this long goes at the standard tier and price, e.g. 30m (default: FLEX_FALLBACK_AFTER_SECONDS, 0 = never)', duration('--flex-fallback-after'));
}

/** Runs a sibling app's entry point in this process, as if it had been started with `args`. */
async function startApp(app: 'worker' | 'board', args: string[]): Promise<ActionResult> {
  const entry = appEntry(app);
  process.argv = [process.argv[0] ?? process.execPath, entry, ...args];
  await import(pathToFileURL(entry).href);
  return 'running';
}

/**
 * The `brandq` command line. Each action hands its result to `done`; errors are thrown to
 * the caller (see main.ts), which turns them into one line and an exit code.
 */
export function buildProgram(done: (result: ActionResult) => void): Command {
  const program = new Command('brandq')
    .description('Enrich brand lists with web search and an LLM across a fleet of workers sharing limits and a budget through Redis.')
    .version(version, '-V, --version')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureHelp({ showGlobalOptions: false });
  const sub = (name: string) => program.command(name).exitOverride().showHelpAfterError('(add --help for usage)').addHelpText('after', `\n${EXIT_CODES_HELP}`);

  enqueueOptions(sub('enqueue').description('create a run from a CSV or a sheet, one job per brand (or continue one), and follow it'))
    .option('--dry-run', 'print the preflight estimate (brands, cache hits, tokens, cost, duration, binding limit) and enqueue nothing')
    .option('--json', 'with --dry-run: the estimate as JSON')
    .option('--follow', 'show live progress until the run ends (default: on a terminal)')
    .option('--no-follow', 'return once the jobs are enqueued')
    .action(async (flags: EnqueueFlags & { follow?: boolean }) => done(await enqueueCommand(flags)));

  enqueueOptions(sub('run').description('the whole job on this machine: start N workers, enqueue, follow, export to out/<run>.csv, stop the workers'))
    .option('--dry-run', 'print the preflight estimate and start nothing')
    .option('--json', 'with --dry-run: the estimate as JSON')
    .option('--workers <n>', 'worker processes to start (default: the number of cores)', positiveInt('--workers'))
    .option('--concurrency <n>', 'jobs per worker process (default: WORKER_CONCURRENCY)', positiveInt('--concurrency'))
    .option('--out <file>', 'where to export the results, .csv or .jsonl (default: out/<run>.csv)')
    .option('--no-bom', 'write the CSV without the UTF-8 byte order mark (Excel needs it for accents)')
    .action(async (flags: FleetRunFlags) => done(await fleetRunCommand(flags)));

  sub('status')
    .description('fleet-wide progress and the cost summary of a run (no --run: the latest runs)')
    .option('--run <id>', 'the run')
    .option('--follow', 'live progress until the run ends; exits with its outcome')
    .option('--json', 'the state as JSON')
    .action(async (flags: StatusFlags) => done(await statusCommand(flags)));

  sub('export')
    .description('write a run\'s results, formula-safe')
    .requiredOption('--run <id>', 'the run')
    .requiredOption('--out <file>', 'results.csv or results.jsonl (the folder must exist)')
    .option('--no-bom', 'write the CSV without the UTF-8 byte order mark (Excel needs it for accents)')
    .action(async (flags: { run: string; out: string; bom: boolean }) => done(await exportCommand(flags)));

  sub('failed')
    .description('a run\'s failed brands with their reasons')
    .requiredOption('--run <id>', 'the run')
    .option('--json', 'as JSON')
    .action(async (flags: { run: string; json?: boolean }) => done(await failedCommand(flags)));

  sub('checkpoint')
    .description('a run in the original tool\'s checkpoint format')
    .requiredOption('--run <id>', 'the run')
    .requiredOption('--out <file>', 'checkpoint.json')
    .action(async (flags: { run: string; out: string }) => done(await checkpointCommand(flags)));

  const runs = sub('runs').description('list runs, change a run\'s share of the fleet, and delete the runs that ended long ago (retention)');
  runs
    .command('list')
    .description('the newest runs: status, progress, when each ended and when its keys expire (RUN_RETENTION_DAYS)')
    .option('--limit <n>', 'how many runs (default 100)', positiveInt('--limit'))
    .option('--json', 'as JSON')
    .exitOverride()
    .action(async (flags: { limit?: number; json?: boolean }) => done(await runsListCommand(flags)));
  runs
    .command('set')
    .description('change a run\'s weight or its own ceiling; a new weight applies from the next free worker slot (recorded in the run\'s history)')
    .argument('<run-id>', 'the run')
    .option('--weight <n>', `its share of the fleet against the other runs with work: weight / the sum of their weights (1..${MAX_WEIGHT})`, weight('--weight'))
    .option('--max-rpm <n>', 'its own ceiling in calls per minute at each provider, or none to lift it', maxRpmOrNone('--max-rpm'))
    .exitOverride()
    .action(async (runId: string, flags: RunsSetFlags) => done(await runsSetCommand(runId, flags)));
  runs
    .command('prune')
    .description('delete runs that ended (completed or cancelled) at least --older-than ago, with their jobs; a dry run unless --yes')
    .requiredOption('--older-than <duration>', 'e.g. 30d, 12h, 1d12h', duration('--older-than'))
    .option('--yes', 'delete (without it: only list what would go)')
    .option('--json', 'the report as JSON')
    .exitOverride()
    .action(async (flags: { olderThan: number; yes?: boolean; json?: boolean }) => done(await runsPruneCommand(flags)));

  sub('worker')
    .description('one worker process: takes brand jobs until SIGINT/SIGTERM (a second signal exits at once)')
    .addOption(new Option('--concurrency <n>', 'jobs at once in this process (default: WORKER_CONCURRENCY)').argParser(positiveInt('--concurrency')))
    .action(async (flags: { concurrency?: number }) => done(await startApp('worker', flags.concurrency === undefined ? [] : ['--concurrency', String(flags.concurrency)])));

  sub('board')
    .description('Bull Board, the runs page and the fleet metrics (BOARD_HOST, BOARD_PORT)')
    .action(async () => done(await startApp('board', [])));

  return program;
}
