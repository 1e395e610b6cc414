import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '@brandq/config';
import { CostLedger } from '@brandq/ledger';
import { RunStore } from '@brandq/runs';
import { checkpointDocument } from './checkpoint-document.js';
import { connectRedis } from './connect.js';
import { UsageError, runCli } from './run-cli.js';

const USAGE = 'usage: pnpm checkpoint --run <id> --out <file.json>';

runCli(USAGE, async () => {
  let values;
  try {
    ({ values } = parseArgs({ options: { run: { type: 'string' }, out: { type: 'string' } }, strict: true }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!values.run || !values.out) throw new UsageError('--run and --out are required');
  const redis = await connectRedis(loadConfig());
  try {
    const runs = new RunStore(redis);
    if (!(await runs.getRun(values.run))) throw new UsageError(`run ${values.run} not found`);
    const doc = await checkpointDocument(runs, values.run, await new CostLedger(redis).snapshot(values.run), 'manual');
    await writeFile(values.out, `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`wrote checkpoint of run ${values.run} (${doc.processed_count}/${doc.total} processed) to ${values.out}\n`);
  } finally {
    redis.disconnect();
  }
});
