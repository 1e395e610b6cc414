import { writeFile } from 'node:fs/promises';
import { CostLedger } from '@brandq/ledger';
import { checkpointDocument } from './checkpoint-document.js';
import { runCommand } from './run-command.js';

runCommand('usage: pnpm checkpoint --run <id> --out <file.json>', { out: { type: 'string' } }, ['out'], async ({ runId, values, redis, runs }) => {
  const out = String(values.out);
  const doc = await checkpointDocument(runs, runId, await new CostLedger(redis).snapshot(runId), 'manual');
  await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`wrote checkpoint of run ${runId} (${doc.processed_count}/${doc.total} processed) to ${out}\n`);
});
