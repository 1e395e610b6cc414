import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fakes } from '@brandq/fakes';
import { startRedisServer, type RedisServerHandle } from '@brandq/redis';
import { spawnTs, waitForExit, type SpawnedProcess } from '@brandq/testing';
import { startOpenFakes, stopWorkers, waitFor, workerEnv } from './test-support.js';

let fakes: Fakes;
const servers: RedisServerHandle[] = [];
const procs: SpawnedProcess[] = [];

beforeAll(async () => {
  fakes = await startOpenFakes();
});
afterAll(async () => {
  await stopWorkers(procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null));
  await fakes?.close();
  for (const s of servers) await s.stop();
});

/** The worker's log lines with `event` set to `name`. */
function events(proc: SpawnedProcess, name: string): Record<string, unknown>[] {
  return proc
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.event === name);
}

function stopped(proc: SpawnedProcess): boolean {
  return proc.child.exitCode !== null || proc.child.signalCode !== null;
}

describe('a worker whose Redis goes away', () => {
  it('logs each outage once as one JSON line, exits within the grace period plus seconds on SIGTERM, and at once on a second signal', { timeout: 150_000 }, async () => {
    const first = await startRedisServer();
    servers.push(first);
    const port = first.port;
    const start = (grace: number) => {
      const proc = spawnTs('apps/worker/src/main.ts', ['--concurrency', '2'], workerEnv(fakes, first.url, { LOG_LEVEL: 'info', SHUTDOWN_GRACE_SECONDS: String(grace) }));
      procs.push(proc);
      return proc;
    };
    const quick = start(2);
    const patient = start(60);
    for (const w of [quick, patient]) await waitFor('worker started', async () => w.output().includes('worker started'), 60_000);

    // First outage: many reconnect attempts, one line; then one line when Redis is back.
    first.process.kill('SIGKILL');
    for (const w of [quick, patient]) await waitFor('redis_down logged', async () => events(w, 'redis_down').length > 0, 20_000);
    // Reconnect attempts go on for these seconds; none of them may add a line.
    await new Promise((r) => setTimeout(r, 3000));
    const second = await startRedisServer({ port });
    servers.push(second);
    for (const w of [quick, patient]) await waitFor('redis_up logged', async () => events(w, 'redis_up').length > 0, 30_000);
    for (const w of [quick, patient]) {
      expect(events(w, 'redis_down')).toHaveLength(1);
      expect(events(w, 'redis_up')).toHaveLength(1);
      // Structured lines only: no raw ECONNREFUSED stack between them.
      const lines = w.output().split('\n').filter((l) => l.trim() !== '');
      expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
    }

    // Second outage, then SIGTERM: the quick worker exits within its grace period + a few seconds.
    second.process.kill('SIGKILL');
    for (const w of [quick, patient]) await waitFor('second redis_down', async () => events(w, 'redis_down').length === 2, 20_000);
    const termAt = Date.now();
    quick.kill('SIGTERM');
    await waitForExit(quick, 15_000);
    const tookMs = Date.now() - termAt;
    // The grace period, the 5 s margin for closing, and 2 s for the process to end.
    expect(tookMs).toBeLessThan((2 + 5 + 2) * 1000);

    // The patient worker (60 s grace) keeps waiting after SIGTERM; a second signal ends it at once.
    patient.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    expect(stopped(patient)).toBe(false);
    const intAt = Date.now();
    patient.kill('SIGINT');
    expect(await waitForExit(patient, 10_000)).toBe(130);
    expect(Date.now() - intAt).toBeLessThan(2000);
    expect(events(patient, 'redis_down')).toHaveLength(2);
  });
});
