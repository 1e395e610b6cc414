import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { createBrandQueue, BRAND_QUEUE, type BrandJobData, type BrandQueue } from '@brandq/queue';
import { QUEUE_PREFIX } from '@brandq/redis';
import { spawnTs, useTestRedis, waitForExit } from '@brandq/testing';
import { isLoopback } from './basic-auth.js';
import { CONTENT_SECURITY_POLICY } from './security-headers.js';
import { listenBoard, rawRequest } from './test-http.js';
import { REDACTED } from '@brandq/redact';
import { boardHosts } from './allowed-hosts.js';

const redis = useTestRedis();
const SECRETS = ['sk-live-abcdefgh12345678', 'tvly-SECRETSECRET99', 'hunter2-password', 'ya29.a0AfB_secretAccessToken', 's3cr3t-redis-pw'];

describe('basic auth and hosts', () => {
  it('answers to its bound address, localhost, 127.0.0.1 and [::1] with its port, and the extra hosts given', () => {
    expect([...boardHosts('127.0.0.1', 3000)].sort()).toEqual(['127.0.0.1:3000', '[::1]:3000', 'localhost:3000']);
    expect(boardHosts('0.0.0.0', 3000, ['board:3000', 'Board.Example.com']).has('board.example.com')).toBe(true);
    expect(boardHosts('0.0.0.0', 3000).has('0.0.0.0:3000')).toBe(false);
    expect(boardHosts('10.0.0.5', 8080).has('10.0.0.5:8080')).toBe(true);
    expect(boardHosts('::1', 3000).has('[::1]:3000')).toBe(true);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '127.example.com', 'board.internal', '']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('the board app (in process, real Redis and Bull Board)', () => {
  let queue: BrandQueue;
  let failedJobId: string;
  const closers: (() => Promise<void>)[] = [];

  async function serve(readOnly: boolean): Promise<string> {
    const listening = await listenBoard({ redis: redis.client(), queue, readOnly, credentials: { user: 'ops', password: 'pw' } });
    closers.push(listening.close);
    return listening.base;
  }
  const auth = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };
  /** What the board's own page sends with a write: its origin, and JSON. */
  const ownWrite = (base: string) => ({ ...auth, origin: base, 'content-type': 'application/json' });

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
    // A "brand" that was really a line of an env dump: its name is masked, and so must be
    // its key slug, in the job data and in the job id.
    await queue.add('brand', { ...data, key: 'board-password-hunter2-password-9f3a', name: 'BOARD_PASSWORD=hunter2-password' }, { jobId: 'secret-run.board-password-hunter2-password-9f3a' });
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
    await Promise.all(closers.map((close) => close()));
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
      const res = await fetch(`${ro}/admin/queues${path}`, { method, headers: ownWrite(ro), body: '{}' });
      expect(res.status, `${method} ${path}`).toBe(405);
    }
    expect(await queue.isPaused()).toBe(false);
    expect(await queue.getJobState(failedJobId)).toBe('failed');
    // Reading still works on the read-only board.
    expect((await fetch(`${ro}/admin/queues/api/queues`, { headers: auth })).status).toBe(200);

    const rw = await serve(false);
    expect((await fetch(`${rw}/admin/queues/api/queues/pause`, { method: 'PUT', headers: { ...auth, origin: rw } })).status).toBe(200);
    expect(await queue.isPaused()).toBe(true);
    await queue.resume();
  });

  it("masks a brand's key slug like its name, in job data and job ids", async () => {
    const base = await serve(false);
    for (const status of ['waiting', 'failed', 'completed', 'active', 'latest']) {
      const res = await fetch(`${base}/admin/queues/api/queues?activeQueue=${BRAND_QUEUE}&status=${status}&page=1`, { headers: auth });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain('hunter2');
      if (status === 'latest') expect(text).toContain(`secret-run.${REDACTED}`);
    }
  });

  it('takes the Basic scheme in any case (RFC 7617) and nothing else', async () => {
    const base = await serve(false);
    const token = Buffer.from('ops:pw').toString('base64');
    for (const header of [`Basic ${token}`, `basic ${token}`, `BASIC ${token}`, `bAsIc  ${token}`]) {
      expect((await fetch(`${base}/api/runs`, { headers: { authorization: header } })).status, header).toBe(200);
    }
    for (const header of [`Bearer ${token}`, `Basic${token}`, token, `Basic ${token}x!`, 'Basic', `Basic ${Buffer.from('ops').toString('base64')}`, `Basic ${Buffer.from(':pw').toString('base64')}`]) {
      expect((await fetch(`${base}/api/runs`, { headers: { authorization: header } })).status, header).toBe(401);
    }
  });

  it('sends the security headers on every answer, refusals and errors included', async () => {
    const base = await serve(false);
    const answers = await Promise.all([
      rawRequest(base, '/runs', { headers: auth }),
      rawRequest(base, '/runs.js', { headers: auth }),
      rawRequest(base, '/runs'),
      rawRequest(base, '/no-such-page', { headers: auth }),
      rawRequest(base, '/admin/queues', { headers: auth }),
      rawRequest(base, '/api/runs', { headers: { ...auth, host: 'evil.example:80' } }),
      rawRequest(base, '/admin/queues/api/queues/pause', { method: 'PUT', headers: auth }),
    ]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 401, 404, 200, 421, 403]);
    for (const res of answers) {
      expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    }
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
