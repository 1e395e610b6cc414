import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { createBrandQueue, BRAND_QUEUE, type BrandJobData, type BrandQueue } from '@brandq/queue';
import { QUEUE_PREFIX } from '@brandq/redis';
import { spawnTs, useTestRedis, waitForExit } from '@brandq/testing';
import { isLoopback } from './basic-auth.js';
import { createBoardApp } from './board-app.js';
import { REDACTED, redactSecrets } from './redact.js';

const redis = useTestRedis();
const SECRETS = ['sk-live-abcdefgh12345678', 'tvly-SECRETSECRET99', 'hunter2-password', 'ya29.a0AfB_secretAccessToken', 's3cr3t-redis-pw'];

describe('redactSecrets', () => {
  it('masks secret-named fields and credential-looking text, and keeps brand keys and token counts', () => {
    const shown = redactSecrets({
      key: 'acme',
      name: 'Acme',
      inputTokens: 1200,
      hints: { apiKey: 'anything', OPENAI_API_KEY: 'x', country: 'US', password: 'hunter2-password' },
      nested: [{ authorization: 'Basic dXNlcjpwYXNz' }, { accessToken: 'ya29.a0AfB_secretAccessToken' }],
      message: 'HTTP 401: Incorrect API key provided: sk-live-abcdefgh12345678 (tavily tvly-SECRETSECRET99)',
      url: 'redis://default:s3cr3t-redis-pw@redis:6379/0',
      header: 'Authorization: Bearer abc.def.ghijklmnop',
      empty: { token: '' },
    });
    const text = JSON.stringify(shown);
    for (const secret of [...SECRETS, 'abc.def.ghijklmnop', 'dXNlcjpwYXNz']) expect(text).not.toContain(secret);
    expect(shown).toMatchObject({
      key: 'acme',
      name: 'Acme',
      inputTokens: 1200,
      hints: { apiKey: REDACTED, OPENAI_API_KEY: REDACTED, country: 'US', password: REDACTED },
      url: `redis://default:${REDACTED}@redis:6379/0`,
      header: `Authorization: Bearer ${REDACTED}`,
      empty: { token: '' },
    });
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '127.example.com', 'board.internal', '']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('the board app (in process, real Redis and Bull Board)', () => {
  let queue: BrandQueue;
  let failedJobId: string;
  const servers: Server[] = [];

  async function serve(readOnly: boolean): Promise<string> {
    const app = createBoardApp({
      redis: redis.client(),
      queue,
      readOnly,
      credentials: { user: 'ops', password: 'pw' },
      limiterStats: async () => ({}),
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const auth = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };

  beforeAll(async () => {
    queue = createBrandQueue(redis.client());
    // A brand whose CSV carried a credential column, and whose failure message quotes a key.
    const data: BrandJobData = {
      runId: 'secret-run',
      key: 'leaky',
      name: 'Leaky Brand',
      rowNumber: 2,
      hints: { api_key: 'sk-live-abcdefgh12345678', password: 'hunter2-password', note: 'see redis://default:s3cr3t-redis-pw@redis:6379' },
      source: { type: 'csv', path: '/data/brands.csv' },
    };
    const job = await queue.add('brand', data, { jobId: 'secret-run.leaky', attempts: 1 });
    failedJobId = job.id!;
    const worker = new Worker<BrandJobData>(
      BRAND_QUEUE,
      async (j) => {
        await j.log('calling with Authorization: Bearer tvly-SECRETSECRET99');
        throw new Error('HTTP 401: Incorrect API key provided: sk-live-abcdefgh12345678');
      },
      { connection: redis.client(), prefix: QUEUE_PREFIX },
    );
    await new Promise<void>((resolve) => worker.on('failed', () => resolve()));
    await worker.close();
  });
  afterAll(async () => {
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await queue?.close();
  });

  it('shows job data, failure reasons, stack traces and logs without secrets', async () => {
    const base = await serve(false);
    const bodies = await Promise.all(
      [`/admin/queues/api/queues?activeQueue=${BRAND_QUEUE}&status=failed&page=1`, `/admin/queues/api/queues/${BRAND_QUEUE}/${failedJobId}`, `/admin/queues/api/queues/${BRAND_QUEUE}/${failedJobId}/logs`].map(async (path) => {
        const res = await fetch(base + path, { headers: auth });
        expect(res.status, path).toBe(200);
        return res.text();
      }),
    );
    const [list, job, logs] = bodies;
    expect(list).toContain('Leaky Brand');
    expect(job).toContain('Leaky Brand');
    expect(job).toContain('Incorrect API key provided');
    expect(logs).toContain('calling with Authorization: Bearer');
    for (const body of bodies) {
      for (const secret of SECRETS) expect(body).not.toContain(secret);
    }
    expect(job).toContain(REDACTED);
  });

  it('read-only: every write endpoint answers 405 and nothing changes; a writable board does change', async () => {
    const ro = await serve(true);
    const writes: Array<[string, string]> = [
      ['PUT', `/api/queues/${BRAND_QUEUE}/retry/failed`],
      ['PUT', `/api/queues/${BRAND_QUEUE}/${failedJobId}/retry`],
      ['PUT', `/api/queues/${BRAND_QUEUE}/${failedJobId}/clean`],
      ['PUT', `/api/queues/${BRAND_QUEUE}/clean/failed`],
      ['PUT', `/api/queues/${BRAND_QUEUE}/pause`],
      ['PUT', '/api/queues/pause'],
      ['PUT', `/api/queues/${BRAND_QUEUE}/empty`],
      ['PUT', `/api/queues/${BRAND_QUEUE}/obliterate`],
      ['POST', `/api/queues/${BRAND_QUEUE}/add`],
      ['PATCH', `/api/queues/${BRAND_QUEUE}/${failedJobId}/update-data`],
      ['DELETE', `/api/queues/${BRAND_QUEUE}`],
    ];
    for (const [method, path] of writes) {
      const res = await fetch(`${ro}/admin/queues${path}`, { method, headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
      expect(res.status, `${method} ${path}`).toBe(405);
    }
    expect(await queue.isPaused()).toBe(false);
    expect(await queue.getJobState(failedJobId)).toBe('failed');
    // Reading still works on the read-only board.
    expect((await fetch(`${ro}/admin/queues/api/queues`, { headers: auth })).status).toBe(200);

    const rw = await serve(false);
    expect((await fetch(`${rw}/admin/queues/api/queues/pause`, { method: 'PUT', headers: auth })).status).toBe(200);
    expect(await queue.isPaused()).toBe(true);
    await queue.resume();
  });

  it('asks for credentials on every route, pages and API alike', async () => {
    const base = await serve(false);
    for (const path of ['/runs', '/api/runs', '/api/limits', '/metrics', '/admin/queues', `/admin/queues/api/queues/${BRAND_QUEUE}/${failedJobId}`]) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
      const wrong = await fetch(base + path, { headers: { authorization: `Basic ${Buffer.from('ops:nope').toString('base64')}` } });
      expect(wrong.status, path).toBe(401);
    }
  });
});

describe('pnpm board start-up', () => {
  it('refuses a non-loopback BOARD_HOST without BOARD_USER and BOARD_PASSWORD, before touching Redis', async () => {
    for (const extra of [{}, { BOARD_USER: 'ops' }]) {
      const board = spawnTs('apps/board/src/main.ts', [], {
        REDIS_URL: 'redis://127.0.0.1:1',
        BOARD_HOST: '0.0.0.0',
        BOARD_PORT: '0',
        BOARD_USER: '',
        BOARD_PASSWORD: '',
        ...extra,
      });
      const code = await waitForExit(board, 30_000);
      expect(code).not.toBe(0);
      expect(board.output()).toMatch(/BOARD_HOST=0\.0\.0\.0 is not loopback: set BOARD_USER and BOARD_PASSWORD/);
      expect(board.output()).not.toMatch(/listening|cannot reach Redis/);
    }
  });
});
