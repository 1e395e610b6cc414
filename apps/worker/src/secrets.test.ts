import { mkdtemp, readFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fakes } from '@brandq/fakes';
import { createRedis, getFreePort, scanKeys, startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { enqueue, producerCli, stopWorkers, waitFor, waitForRun, workerEnv, writeBrandsCsv, startOpenFakes } from './test-support.js';

/**
 * Distinctive credentials, each checked for wherever brandq writes: process output (logs,
 * CLI output, errors), everything in Redis (job data, logs, runs, cache, limiter), Bull
 * Board's API, the runs page API, the board's and a worker's /metrics. Only the part after
 * the recognisable prefix is searched, so a masked form like `sk-t[REDACTED]` passes and
 * any leak of the secret part fails.
 */
const SECRETS = {
  openai: 'sk-test-SECRET123456',
  tavily: 'tvly-SECRET987654',
  sheets: 'ya29.SECRET-sheets-token-0042',
  redis: 'redis-SECRET-pw-31337',
  board: 'board-SECRET-pw-4242',
  wrongOpenai: 'sk-test-WRONGKEY-998877',
};
const NEEDLES = ['SECRET123456', 'SECRET987654', 'SECRET-sheets-token', 'SECRET-pw-31337', 'SECRET-pw-4242', 'WRONGKEY-998877'];

function leaks(where: string, text: string): string[] {
  return NEEDLES.filter((n) => text.includes(n)).map((n) => `${where}: ${n} in …${text.slice(Math.max(0, text.indexOf(n) - 120), text.indexOf(n) + 40)}…`);
}

let server: RedisServerHandle;
let redisUrl: string;
let fakes: Fakes;
let dir: string;
const procs: SpawnedProcess[] = [];

beforeAll(async () => {
  server = await startRedisServer();
  const admin = createRedis(server.url);
  await admin.config('SET', 'requirepass', SECRETS.redis);
  admin.disconnect();
  redisUrl = `redis://:${SECRETS.redis}@127.0.0.1:${server.port}`;
  fakes = await startOpenFakes({
    openai: { apiKey: SECRETS.openai, latencyMs: { min: 5, max: 20 }, seed: 41 },
    tavily: { apiKey: SECRETS.tavily, latencyMs: { min: 5, max: 20 }, seed: 42 },
    sheets: { apiKey: SECRETS.sheets },
  });
  dir = await mkdtemp(join(tmpdir(), 'brandq-secrets-'));
});
afterAll(async () => {
  await stopWorkers(procs.filter((p) => p.child.exitCode === null));
  await fakes?.close();
  await server?.stop();
});

describe('no credential leaks', () => {
  it('no API key, token or password in logs, job data, Redis, Bull Board, the runs API or metrics labels', { timeout: 180_000 }, async () => {
    const names = Array.from({ length: 12 }, (_, i) => `Secret Brand ${i + 1}`);
    fakes.sheets.setSheet('secret-sheet', 'Brands', [['brand'], ...names.map((n) => [n])]);
    // Errors on the way, so error paths log too: a 500 and a 429 from the LLM, a 500 from Tavily.
    fakes.openai.injectFaults([{ status: 500, brand: names[0] }, { status: 429, brand: names[1], retryAfterMs: 200 }]);
    fakes.tavily.injectFaults([{ status: 500, brand: names[2] }]);
    const metricsPort = await getFreePort();
    const env = workerEnv(fakes, redisUrl, { LOG_LEVEL: 'debug', JOB_BACKOFF_BASE_SECONDS: '0.2', OPENAI_BACKOFF_BASE_SECONDS: '0.2', SHEETS_FLUSH_SECONDS: '0.5', BOARD_PASSWORD: SECRETS.board });

    procs.push(await enqueue(['--sheet', 'secret-sheet', '--range', 'Brands!A2:A', '--run', 'secret-run'], env));

    const worker = spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], { ...env, METRICS_PORT: String(metricsPort) });
    procs.push(worker);
    const client = createRedis(redisUrl);
    const runs = new RunStore(client);
    await waitForRun(runs, 'secret-run', (r) => r.status === 'completed', 90_000);
    await waitFor('sheet rows written', async () => (await client.scard('brandq:sheet-flusher:pending-runs')) === 0, 60_000);

    await stopWorkers([worker]);

    // A worker with a key the provider refuses: the run pauses with the reason (the provider
    // echoes a masked key, as OpenAI does); the key must not appear in full anywhere.
    const csv = await writeBrandsCsv(dir, ['Wrong Key Brand 1', 'Wrong Key Brand 2', 'Wrong Key Brand 3'], 'secrets.csv');
    procs.push(await enqueue(['--csv', csv, '--run', 'wrong-key-run'], env));
    const wrongWorker = spawnTs('apps/worker/src/main.ts', ['--concurrency', '2'], { ...env, OPENAI_API_KEY: SECRETS.wrongOpenai });
    procs.push(wrongWorker);
    const paused = await waitForRun(runs, 'wrong-key-run', (r) => r.status === 'paused', 90_000);
    expect(paused.statusReason).toMatch(/OPENAI_API_KEY/);
    // Brought back with the right key: the held brands finish.
    await stopWorkers([wrongWorker]);
    procs.push(await enqueue(['--resume', '--run', 'wrong-key-run'], env));
    const healthy = spawnTs('apps/worker/src/main.ts', ['--concurrency', '4'], { ...env, METRICS_PORT: String(metricsPort) });
    procs.push(healthy);
    await waitForRun(runs, 'wrong-key-run', (r) => r.status === 'completed', 90_000);

    const found: string[] = [];
    // Worker metrics (labels and values), read while it runs.
    const workerMetrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(workerMetrics).toMatch(/brandq_jobs_completed_total/);
    // It binds loopback by default (METRICS_HOST): this machine's other addresses find no one.
    for (const address of Object.values(networkInterfaces()).flat().filter((i) => i?.family === 'IPv4' && !i.internal)) {
      await expect(fetch(`http://${address!.address}:${metricsPort}/metrics`), address!.address).rejects.toThrow();
    }
    found.push(...leaks('worker /metrics', workerMetrics));

    // The board, bound beyond loopback: refuses without credentials, serves with them.
    const boardPort = await getFreePort();
    const board = spawnTs('apps/board/src/main.ts', [], { ...env, BOARD_HOST: '0.0.0.0', BOARD_PORT: String(boardPort), BOARD_USER: 'ops', BOARD_PASSWORD: SECRETS.board });
    procs.push(board);
    await waitFor('the board listening', async () => /board: http/.test(board.output()), 60_000, 200);
    const base = `http://127.0.0.1:${boardPort}`;
    const auth = { authorization: `Basic ${Buffer.from(`ops:${SECRETS.board}`).toString('base64')}` };
    for (const path of ['/runs', '/api/runs', '/admin/queues/api/queues', '/metrics']) {
      expect((await fetch(base + path)).status, path).toBe(401);
    }
    const paths = [
      '/api/runs',
      '/api/limits',
      '/metrics',
      '/admin/queues/api/redis/stats',
      '/admin/queues/api/queues/brands/workers',
      ...['latest', 'completed', 'failed', 'delayed', 'waiting', 'active'].map((s) => `/admin/queues/api/queues?activeQueue=brands&status=${s}&page=1&jobsPerPage=100`),
    ];
    let boardJobs = 0;
    for (const path of paths) {
      const res = await fetch(base + path, { headers: auth });
      expect(res.status, path).toBe(200);
      const text = await res.text();
      if (path.includes('activeQueue')) boardJobs += (text.match(/"runId"/g) ?? []).length;
      found.push(...leaks(`board ${path}`, text));
    }
    expect(boardJobs).toBeGreaterThan(0);
    for (const job of (await client.keys('{brandq}:brands:*')).filter((k) => /\.[a-z0-9-]+$/.test(k)).slice(0, 5)) {
      const id = job.split(':').slice(2).join(':');
      for (const suffix of ['', '/logs']) {
        const res = await fetch(`${base}/admin/queues/api/queues/brands/${encodeURIComponent(id)}${suffix}`, { headers: auth });
        found.push(...leaks(`board job ${id}${suffix}`, await res.text()));
      }
    }

    // CLIs that print runs: status, failed, export.
    found.push(...leaks('status', await producerCli('status', ['--run', 'secret-run'], env)));
    found.push(...leaks('failed', await producerCli('failed', ['--run', 'wrong-key-run'], env)));
    const out = join(dir, 'secret.jsonl');
    await producerCli('export', ['--run', 'secret-run', '--out', out], env);
    found.push(...leaks('export', await readFile(out, 'utf8')));

    // Everything in Redis: every key of every type, BullMQ's job hashes and logs included.
    let keys = 0;
    for await (const key of scanKeys(client, '*')) {
      keys += 1;
      found.push(...leaks(`redis key ${key}`, key), ...leaks(`redis ${key}`, await dump(client, key)));
    }
    expect(keys).toBeGreaterThan(20);

    await stopWorkers([healthy]);
    board.kill('SIGTERM');
    await waitForExit(board, 30_000);
    // Process output: producers, workers (debug logs, errors, the 401 path) and the board.
    for (const p of procs) found.push(...leaks(`output of pid ${p.child.pid}`, p.output()));
    expect(worker.output()).toMatch(/"level":/); // it did log
    expect(wrongWorker.output()).toMatch(/paused/);
    expect(found).toEqual([]);
    client.disconnect();
  });

  it('a bad REDIS_URL, or an unreachable Redis, is reported without its password', async () => {
    const badUrl = spawnTs('apps/worker/src/main.ts', [], { REDIS_URL: `redis://:${SECRETS.redis}@127.0.0.1:notaport`, OPENAI_API_KEY: SECRETS.openai });
    expect(await waitForExit(badUrl, 30_000)).toBe(1);
    expect(badUrl.output()).toMatch(/REDIS_URL: expected a URL.*redis:\/\/:\*\*\*@127\.0\.0\.1:notaport/);
    const port = await getFreePort();
    const producer = spawnTs('apps/producer/src/status.ts', [], { REDIS_URL: `redis://:${SECRETS.redis}@127.0.0.1:${port}`, REDIS_CONNECT_TIMEOUT_SECONDS: '0' });
    expect(await waitForExit(producer, 30_000)).toBe(1);
    expect(producer.output()).toMatch(new RegExp(`cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
    expect([...leaks('worker', badUrl.output()), ...leaks('producer', producer.output())]).toEqual([]);
  });
});

/** A key's whole content as text, whatever its type. */
async function dump(client: ReturnType<typeof createRedis>, key: string): Promise<string> {
  switch (await client.type(key)) {
    case 'string':
      return (await client.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await client.hgetall(key));
    case 'list':
      return JSON.stringify(await client.lrange(key, 0, -1));
    case 'set':
      return JSON.stringify(await client.smembers(key));
    case 'zset':
      return JSON.stringify(await client.zrange(key, 0, -1, 'WITHSCORES'));
    case 'stream':
      return JSON.stringify(await client.xrange(key, '-', '+'));
    default:
      return '';
  }
}
