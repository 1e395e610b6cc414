/**
 * `pnpm fakes`: runs the three fake providers until SIGINT/SIGTERM and prints the
 * environment that points brandq at them (stdout, so `pnpm -s fakes > .env.fakes` works).
 */
import { startFakes } from './start.js';

function port(name: string): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? 0 : Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number, got ${raw}`);
  return value;
}

/** Optional non-negative milliseconds; unset leaves the fake's default. */
function millis(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number of milliseconds, got ${raw}`);
  return value;
}

// The batch delay is also settable at runtime: POST /__fake/config {"batchDelayMs": ...}.
const batchDelayMs = millis('FAKES_OPENAI_BATCH_DELAY_MS');
const fakes = await startFakes({
  openai: { port: port('FAKES_OPENAI_PORT'), ...(batchDelayMs !== undefined ? { batchDelayMs } : {}) },
  tavily: { port: port('FAKES_TAVILY_PORT') },
  sheets: { port: port('FAKES_SHEETS_PORT') },
});

for (const [key, value] of Object.entries(fakes.env)) process.stdout.write(`${key}=${value}\n`);
process.stderr.write(
  `fakes running; ledgers at ${fakes.openai.origin}/__fake/ledger, ${fakes.tavily.origin}/__fake/ledger, ${fakes.sheets.origin}/__fake/ledger\n`,
);

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  process.stderr.write(`${signal}: closing fakes\n`);
  await fakes.close();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
