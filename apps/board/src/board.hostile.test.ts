import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrandQueue, type BrandQueue } from '@brandq/queue';
import { createRedis, getFreePort, startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { RunStore } from '@brandq/runs';
import { spawnTs, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { rawRequest, type RawAnswer } from './test-http.js';

/**
 * The board as an attacker meets it: a real `pnpm board` process on loopback, with basic
 * auth and every secret an operator has planted in its environment. Every answer is checked
 * for its status and for the absence of each secret, in body and headers alike.
 */
const SECRETS = {
  OPENAI_API_KEY: 'sk-proj-HOSTILEopenai00001',
  TAVILY_API_KEY: 'tvly-HOSTILEtavily00002',
  GOOGLE_SHEETS_ACCESS_TOKEN: 'ya29.HOSTILEsheets00003',
  BOARD_PASSWORD: 'HOSTILE-board-pw-00004',
  redis: 'HOSTILE-redis-pw-00005',
};
/** The part of each secret no masked form keeps. */
const NEEDLES = ['HOSTILEopenai00001', 'HOSTILEtavily00002', 'HOSTILEsheets00003', 'HOSTILE-board-pw-00004', 'HOSTILE-redis-pw-00005'];
const USER = 'ops';

let server: RedisServerHandle;
let board: SpawnedProcess;
let base: string;
let host: string;
let queue: BrandQueue;
let runs: RunStore;
let dir: string;
const answers: Array<{ what: string; answer: RawAnswer }> = [];

const auth = (user = USER, password = SECRETS.BOARD_PASSWORD) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A request, remembered so every answer is searched for secrets at the end, too. */
async function send(what: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawAnswer> {
  const answer = await rawRequest(base, path, options).catch((err: unknown) => {
    throw new Error(`${what}: ${String(err)}`);
  });
  answers.push({ what, answer });
  const text = `${JSON.stringify(answer.headers)}\n${answer.body}`;
  for (const needle of NEEDLES) expect(text, `${what}: leaked ${needle}`).not.toContain(needle);
  return answer;
}

/** A write exactly as the board's own page makes it. */
const own = (extra: Record<string, string> = {}) => ({ authorization: auth(), origin: base, 'content-type': 'application/json', ...extra });

beforeAll(async () => {
  server = await startRedisServer();
  const admin = createRedis(server.url);
  await admin.config('SET', 'requirepass', SECRETS.redis);
  admin.disconnect();
  const redisUrl = `redis://:${SECRETS.redis}@127.0.0.1:${server.port}`;
  dir = await mkdtemp(join(tmpdir(), 'brandq-hostile-'));
  // A file holding secrets, and a symlink into /proc: the board must read neither.
  await writeFile(join(dir, 'secret.csv'), `brand\n${Object.entries(SECRETS).map(([k, v]) => `${k}=${v}`).join('\n')}\n`);
  await symlink('/proc/self/environ', join(dir, 'environ.csv'));
  await symlink(join(dir, 'secret.csv'), join(dir, 'link.csv'));

  const port = await getFreePort();
  host = `127.0.0.1:${port}`;
  base = `http://${host}`;
  board = spawnTs('apps/board/src/main.ts', [], {
    REDIS_URL: redisUrl,
    OPENAI_API_KEY: SECRETS.OPENAI_API_KEY,
    TAVILY_API_KEY: SECRETS.TAVILY_API_KEY,
    GOOGLE_SHEETS_ACCESS_TOKEN: SECRETS.GOOGLE_SHEETS_ACCESS_TOKEN,
    // No Google behind this: a sheet id reaches a closed port, never the internet.
    GOOGLE_SHEETS_ROOT_URL: 'http://127.0.0.1:1',
    BOARD_HOST: '127.0.0.1',
    BOARD_PORT: String(port),
    BOARD_USER: USER,
    BOARD_PASSWORD: SECRETS.BOARD_PASSWORD,
    BOARD_READ_ONLY: 'false',
    BUDGET_USD: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'debug',
  });
  const deadline = Date.now() + 60_000;
  while (!board.output().includes(`board: ${base}/runs`)) {
    if (Date.now() > deadline || board.child.exitCode !== null) throw new Error(`the board did not start:\n${board.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const client = createRedis(redisUrl);
  queue = createBrandQueue(client);
  runs = new RunStore(client);
  // A real run, created the only way the API allows: CSV content from the board's own origin.
  const created = await send('control run', '/api/runs', { method: 'POST', headers: own(), body: JSON.stringify({ csvText: 'brand\nHostile Control A\nHostile Control B\n', run: 'control', budget: 5 }) });
  expect(created.status, created.body).toBe(201);
}, 90_000);

afterAll(async () => {
  await queue?.close();
  board?.kill('SIGTERM');
  if (board) await waitForExit(board, 15_000).catch(() => board.kill('SIGKILL'));
  await server?.stop();
});

describe('a hostile client against a real board process', () => {
  it('never reads a server path, whatever field carries it', { timeout: 60_000 }, async () => {
    const paths = [
      '/proc/self/environ',
      '/etc/passwd',
      join(dir, 'secret.csv'),
      join(dir, 'environ.csv'),
      join(dir, 'link.csv'),
      '.env',
      'package.json',
      './apps/board/src/main.ts',
      '../../../../../../proc/self/environ',
      `${dir}/../${dir.split('/').pop()}/secret.csv`,
      'file:///proc/self/environ',
    ];
    const bodies = (path: string): Array<Record<string, unknown>> => [
      { csv: path, budget: 1 },
      { csv: path, column: path, budget: 1 },
      { path, budget: 1 },
      { file: path, budget: 1 },
      { csvPath: path, budget: 1 },
      { csvText: path, budget: 1 },
      { csvText: 'brand\nAcme\n', column: path, budget: 1 },
      { sheet: path, budget: 1 },
      { sheet: 'abc123', range: path, budget: 1 },
      { sheet: 'abc123', resultColumn: path, budget: 1 },
      { csvText: 'brand\nAcme\n', run: path, budget: 1 },
      { csvText: 'brand\nAcme\n', budget: path },
      { csvText: 'brand\nAcme\n', limit: path, budget: 1 },
      { csvText: 'brand\nAcme\n', weight: path, budget: 1 },
      { csvText: 'brand\nAcme\n', maxRpm: path, budget: 1 },
    ];
    for (const path of paths) {
      for (const body of bodies(path)) {
        const what = `POST /api/runs ${JSON.stringify(body)}`;
        const res = await send(what, '/api/runs', { method: 'POST', headers: own(), body: JSON.stringify(body) });
        // A well-formed sheet id goes to Google (here a closed port: 502). A run name that
        // happens to read like a file name (`package.json`) is just a name: the run holds the
        // one brand of the CSV text. Everything else is 400.
        const reachesSheets = body['sheet'] === 'abc123' && res.status === 502;
        const namesRun = body['run'] === path && res.status === 201 && (JSON.parse(res.body) as { runId: string; total: number }).total === 1;
        expect(reachesSheets || namesRun ? 400 : res.status, `${what} -> ${res.body}`).toBe(400);
        expect(res.headers['content-type'], what).toMatch(/application\/json/);
        // Nothing of any file shows: no passwd line, no environment, no source code.
        expect(res.body, what).not.toMatch(/root:x:0:0|PATH=|HOME=|import \{|"name": "brandq"/);
      }
    }
    // No run came of any of it but those named by the `run` field, each of one brand: Acme.
    for (const run of await runs.listRuns(100)) {
      if (run.id !== 'control') expect({ id: run.id, total: run.total, source: run.sourceKey }).toEqual({ id: run.id, total: 1, source: expect.stringMatching(/^csv-text:/) as string });
    }
  });

  it('answers only to its own Host names (421 to a rebound name)', async () => {
    const port = host.split(':')[1];
    for (const spoofed of ['evil.example', `evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `localhost.evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, '127.0.0.1', `0.0.0.0:${port}`]) {
      for (const path of ['/runs', '/api/runs', '/api/limits', '/metrics', '/admin/queues', '/admin/queues/api/queues']) {
        const res = await send(`GET ${path} Host: ${spoofed}`, path, { headers: { host: spoofed, authorization: auth() } });
        expect(res.status, `${path} Host: ${spoofed}`).toBe(421);
      }
      const write = await send(`POST Host: ${spoofed}`, '/api/runs', { method: 'POST', headers: { ...own(), host: spoofed, origin: `http://${spoofed}` }, body: '{"csvText":"brand\\nX\\n","budget":1}' });
      expect(write.status).toBe(421);
    }
    for (const own of [host, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      expect((await send(`GET Host: ${own}`, '/api/runs', { headers: { host: own, authorization: auth() } })).status, own).toBe(200);
    }
  });

  it('refuses cross-origin, origin-less, form and text/plain writes on every write route, ours and Bull Board’s; nothing changes', { timeout: 60_000 }, async () => {
    // A run's jobs queue by priority: their place among the fleet's runs (fair shares).
    const [job] = await queue.getJobs(['prioritized'], 0, 0);
    expect(job?.id).toBeDefined();
    const jobId = encodeURIComponent(job!.id!);
    const routes: Array<[string, string]> = [
      ['POST', '/api/runs'],
      ['POST', '/admin/queues/api/queues/brands/add'],
      ['PUT', '/admin/queues/api/queues/brands/retry/failed'],
      ['PUT', '/admin/queues/api/queues/brands/clean/waiting'],
      ['PUT', '/admin/queues/api/queues/brands/pause'],
      ['PUT', '/admin/queues/api/queues/pause'],
      ['PUT', '/admin/queues/api/queues/brands/empty'],
      ['PUT', '/admin/queues/api/queues/brands/obliterate'],
      ['PUT', `/admin/queues/api/queues/brands/${jobId}/retry`],
      ['PUT', `/admin/queues/api/queues/brands/${jobId}/clean`],
      ['PUT', `/admin/queues/api/queues/brands/${jobId}/promote`],
      ['PATCH', `/admin/queues/api/queues/brands/${jobId}/update-data`],
      ['DELETE', '/admin/queues/api/queues/brands'],
    ];
    const form = 'name=brand&data=%7B%22runId%22%3A%22evil%22%7D&csvText=brand%0AEvil';
    const text = '{"name":"brand","data":{"runId":"evil"},"csvText":"brand\\nEvil\\n","budget":1}';
    const attempts: Array<[string, Record<string, string>, string, number]> = [
      ['cross-origin form', { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, form, 403],
      ['cross-origin text/plain', { origin: 'http://evil.example', 'content-type': 'text/plain' }, text, 403],
      ['cross-origin JSON', { origin: 'http://evil.example', 'content-type': 'application/json' }, text, 403],
      ['Origin: null (sandboxed frame)', { origin: 'null', 'content-type': 'text/plain' }, text, 403],
      ['foreign Referer, no Origin', { referer: 'http://evil.example/board.html', 'content-type': 'text/plain' }, text, 403],
      ['look-alike Origin', { origin: `http://${host}.evil.example`, 'content-type': 'application/json' }, text, 403],
      ['no Origin, no Referer', { 'content-type': 'text/plain' }, text, 403],
      ['no Origin, no Referer, JSON', { 'content-type': 'application/json' }, text, 403],
      ['own origin, form', { origin: base, 'content-type': 'application/x-www-form-urlencoded' }, form, 415],
      ['own origin, text/plain', { origin: base, 'content-type': 'text/plain' }, text, 415],
      ['own origin, multipart', { origin: base, 'content-type': 'multipart/form-data; boundary=x' }, '--x--', 415],
      ['own Referer, text/plain', { referer: `${base}/runs`, 'content-type': 'text/plain' }, text, 415],
    ];
    const before = await queue.getJobCounts();
    const runsBefore = (await runs.listRuns(1000)).map((r) => r.id).sort();
    for (const [method, path] of routes) {
      for (const [what, headers, body, status] of attempts) {
        const res = await send(`${what} ${method} ${path}`, path, { method, headers: { authorization: auth(), ...headers }, body });
        expect(res.status, `${what} ${method} ${path}: ${res.body}`).toBe(status);
      }
    }
    expect(await queue.isPaused()).toBe(false);
    expect(await queue.getJobCounts()).toEqual(before);
    expect(await queue.getJobState(job!.id!)).toBe('prioritized');
    expect((await runs.listRuns(1000)).map((r) => r.id).sort()).toEqual(runsBefore);

    // The same write from the board's own page works: the refusals above are not a broken route.
    expect((await send('own pause', '/admin/queues/api/queues/brands/pause', { method: 'PUT', headers: { authorization: auth(), origin: base } })).status).toBe(200);
    expect(await queue.isPaused()).toBe(true);
    expect((await send('own resume', '/admin/queues/api/queues/brands/resume', { method: 'PUT', headers: { authorization: auth(), referer: `${base}/admin/queues` } })).status).toBe(200);
    expect(await queue.isPaused()).toBe(false);
  });

  it('answers oversized and malformed bodies in JSON without quoting them', async () => {
    const marker = `UNIQUE-BODY-MARKER ${SECRETS.OPENAI_API_KEY}`;
    const big = await send('2 MB run', '/api/runs', { method: 'POST', headers: own(), body: JSON.stringify({ csvText: `brand\n${marker}\n${'x'.repeat(2_000_000)}`, budget: 1 }) });
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    const bigAdd = await send('200 KB job', '/admin/queues/api/queues/brands/add', { method: 'POST', headers: own(), body: JSON.stringify({ name: 'brand', data: { x: 'y'.repeat(200_000) } }) });
    expect(bigAdd.status).toBe(413);
    for (const path of ['/api/runs', '/admin/queues/api/queues/brands/add']) {
      for (const body of [`{"csvText": "${marker}`, `${marker}`, '{"a":', '\u0000\u0001', '[]garbage']) {
        const res = await send(`malformed ${path}`, path, { method: 'POST', headers: own(), body });
        expect(res.status, `${path} ${body}`).toBe(400);
        expect(res.headers['content-type']).toMatch(/application\/json/);
        expect(res.body).not.toContain('UNIQUE-BODY-MARKER');
        expect(res.body).not.toMatch(/ at |node_modules|\.ts:|\.js:/);
      }
    }
    const csv = await send('CSV content as text/csv', '/api/runs', { method: 'POST', headers: own({ 'content-type': 'text/csv' }), body: `brand\n${marker}\n` });
    expect(csv.status).toBe(415);
    const json = await send('a JSON string, not an object', '/api/runs', { method: 'POST', headers: own(), body: JSON.stringify(marker) });
    expect(json.status).toBe(400);
    expect(json.body).not.toContain('UNIQUE-BODY-MARKER');
    const missing = await send('unknown route', '/admin/../etc/passwd', { headers: { authorization: auth() } });
    expect([400, 404]).toContain(missing.status);
  });

  it('refuses wrong and odd credentials, takes the Basic scheme in any case', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const refused = [
      '',
      'Basic',
      'Basic ',
      `Basic ${b64(`${USER}:wrong`)}`,
      `Basic ${b64(`${USER}:${SECRETS.BOARD_PASSWORD} `)}`,
      `Basic ${b64(`${USER.toUpperCase()}:${SECRETS.BOARD_PASSWORD}`)}`,
      `Basic ${b64(`:${SECRETS.BOARD_PASSWORD}`)}`,
      `Basic ${b64(USER)}`,
      `Basic ${b64(`${USER}:${SECRETS.BOARD_PASSWORD}`)}!!`,
      `Basic ${b64(`${USER}:${SECRETS.BOARD_PASSWORD}`)} extra`,
      `Bearer ${SECRETS.BOARD_PASSWORD}`,
      `Digest username="${USER}"`,
      SECRETS.BOARD_PASSWORD,
      `Basic ${'A'.repeat(8000)}`,
      `Basic ${b64(`${USER}:${SECRETS.BOARD_PASSWORD}\u0000`)}`,
    ];
    for (const header of refused) {
      const res = await send(`Authorization: ${header.slice(0, 40)}`, '/api/runs', { headers: header ? { authorization: header } : {} });
      expect(res.status, header.slice(0, 60)).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="brandq"/);
    }
    for (const scheme of ['Basic', 'basic', 'BASIC']) {
      expect((await send(`${scheme} ok`, '/api/runs', { headers: { authorization: `${scheme} ${b64(`${USER}:${SECRETS.BOARD_PASSWORD}`)}` } })).status, scheme).toBe(200);
    }
    const huge = await rawRequest(base, '/api/runs', { headers: { authorization: `Basic ${'A'.repeat(40_000)}` } });
    expect(huge.status).toBe(431);
  });

  it('creates no run whose budget rounds to nothing (0 micro-dollars means unlimited) or overflows', async () => {
    const runsBefore = (await runs.listRuns(1000)).map((r) => r.id).sort();
    for (const budget of [1e-9, 4e-7, 5e-324, 1e300, Number.MAX_SAFE_INTEGER]) {
      const res = await send(`budget ${budget}`, '/api/runs', { method: 'POST', headers: own(), body: JSON.stringify({ csvText: `brand\nTiny Budget ${budget}\n`, budget }) });
      expect(res.status, `budget ${budget}: ${res.body}`).toBe(400);
      expect(JSON.parse(res.body), `budget ${budget}`).toMatchObject({ code: 'BAD_REQUEST' });
    }
    expect((await runs.listRuns(1000)).map((r) => r.id).sort()).toEqual(runsBefore);
  });

  it('every answer carried the security headers, and no secret reached the board’s output', async () => {
    expect(answers.length).toBeGreaterThan(300);
    for (const { what, answer } of answers) {
      expect(answer.headers['x-frame-options'], what).toBe('DENY');
      expect(answer.headers['content-security-policy'], what).toContain("frame-ancestors 'none'");
      expect(answer.headers['x-content-type-options'], what).toBe('nosniff');
      expect(answer.headers['referrer-policy'], what).toBe('no-referrer');
      // Bull Board runs its own Express app: it announced itself on every answer it made.
      expect(answer.headers['x-powered-by'], what).toBeUndefined();
    }
    for (const needle of NEEDLES) expect(board.output()).not.toContain(needle);
  });
});
