import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fakes } from '@brandq/fakes';
import { createRedis } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { useTestRedis, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { startOpenFakes, workerEnv } from './test-support.js';

/**
 * The production runtime: the worker and the producer as `pnpm build` emits them, started
 * with plain `node` (no tsx, no source condition, no NODE_OPTIONS), as the Docker image
 * runs them. The build runs first, so the test never runs a stale dist/ (turbo makes it a
 * cache hit when nothing changed; .ci/run builds before the tests).
 */
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const redis = useTestRedis();
const BRANDS = Array.from({ length: 12 }, (_, i) => `Built Brand ${i + 1}`);
const SHUTDOWN_GRACE_SECONDS = 5;

let fakes: Fakes;
let dir: string;
const processes: SpawnedProcess[] = [];

beforeAll(async () => {
  await promisify(execFile)('pnpm', ['build'], { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 });
  fakes = await startOpenFakes();
  dir = await mkdtemp(join(tmpdir(), 'brandq-built-'));
}, 600_000);

afterAll(async () => {
  for (const p of processes) p.kill('SIGKILL');
  await fakes?.close();
});

/** `node <args>` from the repository root, with nothing that could load a compiler. */
function node(args: string[], env: Record<string, string>): SpawnedProcess {
  const { NODE_OPTIONS: _dropped, ...inherited } = process.env;
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const append = (chunk: Buffer) => void (text += chunk.toString());
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const proc: SpawnedProcess = { child, output: () => text, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
  processes.push(proc);
  return proc;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms:\n${output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the built runtime (node on dist/, no tsx)', () => {
  it('the built producer enqueues, the built worker completes every brand and passes the healthcheck, and SIGTERM ends it with exit 0', async () => {
    const csv = join(dir, 'brands.csv');
    await writeFile(csv, `brand\n${BRANDS.join('\n')}\n`);
    const env = workerEnv(fakes, redis.url, { LOG_LEVEL: 'info', SHUTDOWN_GRACE_SECONDS: String(SHUTDOWN_GRACE_SECONDS), METRICS_PORT: String(await freePort()) });
    const healthcheck = async () => waitForExit(node(['apps/worker/dist/healthcheck.js'], env), 15_000);

    const enqueue = node(['apps/producer/dist/enqueue.js', '--csv', csv, '--run', 'built-run', '--no-follow'], env);
    expect(await waitForExit(enqueue, 60_000), enqueue.output()).toBe(0);
    expect(enqueue.output()).toContain(`${BRANDS.length} brands enqueued`);

    const worker = node(['apps/worker/dist/main.js', '--concurrency', '4'], env);
    const client = createRedis(redis.url);
    try {
      const runs = new RunStore(client);
      await waitFor('run built-run completed', async () => (await runs.getRun('built-run'))?.status === 'completed', 60_000, worker.output);
      expect(await runs.getRun('built-run')).toMatchObject({ total: BRANDS.length, succeeded: BRANDS.length, failed: 0 });
    } finally {
      await client.quit();
    }
    expect(worker.output()).toContain('"msg":"worker started"');
    expect(fakes.openai.ledger.summary().paidCalls).toBe(BRANDS.length);
    expect(await healthcheck()).toBe(0);

    worker.kill('SIGTERM');
    expect(await waitForExit(worker, (SHUTDOWN_GRACE_SECONDS + 5) * 1000)).toBe(0);
    expect(worker.output()).toContain('"msg":"worker stopped"');
    // Its metrics endpoint is gone with it: the image's HEALTHCHECK now fails.
    expect(await healthcheck()).toBe(1);
    expect(worker.output()).not.toMatch(/ExperimentalWarning|tsx/);
  });

  it('loads the Google Sheets client on the first sheet call, never on import', async () => {
    fakes.sheets.setSheet('sheet-1', 'Brands', [['Acme'], ['Globex']]);
    // The Google client is CommonJS: once loaded, its files are in the CommonJS module cache.
    const script = `
      import { createRequire } from 'node:module';
      const { SheetsClient } = await import('./packages/sheets/dist/index.js');
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('googleapis'));
      const client = new SheetsClient({ rootUrl: process.env.GOOGLE_SHEETS_ROOT_URL, accessToken: process.env.GOOGLE_SHEETS_ACCESS_TOKEN });
      const before = loaded();
      const rows = await client.readValues('sheet-1', 'Brands!A1:A2');
      console.log(JSON.stringify({ before, after: loaded(), rows }));
    `;
    const probe = node(['--input-type=module', '-e', script], fakes.env);
    expect(await waitForExit(probe, 30_000), probe.output()).toBe(0);
    expect(JSON.parse(probe.output().trim())).toEqual({ before: false, after: true, rows: [['Acme'], ['Globex']] });
  });
});
