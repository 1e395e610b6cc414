import { runCommand } from './run-command.js';

runCommand('usage: pnpm failed --run <id>', {}, [], async ({ runId, runs }) => {
  const failures = [];
  for await (const f of runs.failures(runId)) failures.push(f);
  failures.sort((a, b) => a.rowNumber - b.rowNumber);
  for (const f of failures) process.stdout.write(`row ${f.rowNumber}\t${f.brand}\t${f.kind}\tattempts ${f.attempts}\t${f.reason}\n`);
  process.stdout.write(`${failures.length} failed brand(s)${failures.length ? `; retry with: pnpm enqueue --retry-failed --run ${runId}` : ''}\n`);
});
