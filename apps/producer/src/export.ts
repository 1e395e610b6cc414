import { exportRun } from './export-run.js';
import { runCommand } from './run-command.js';

runCommand('usage: pnpm export --run <id> --out <results.csv|results.jsonl>', { out: { type: 'string' } }, ['out'], async ({ runId, values, runs }) => {
  const out = String(values.out);
  const count = await exportRun(runs, runId, out);
  process.stdout.write(`wrote ${count} rows to ${out}\n`);
});
