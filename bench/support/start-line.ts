import type { Redis } from 'ioredis';
import { createRedis } from './workspace.js';
import type { SpawnedProcess } from './workspace.js';

/**
 * Starts every process of a cell at once: each child prints READY when set up and blocks on
 * a Redis list; the parent pushes one start message per child when all are ready, so the
 * seconds tsx takes to boot a process stay out of the measurement.
 */
const GO_KEY = 'bench:go';

export interface StartMessage {
  /** Epoch ms at which the parent released the cell. */
  goAt: number;
  /** Epoch ms at which children stop starting new work. */
  deadline: number;
}

/** Child side: announce readiness, then wait for the start message. */
export async function awaitStart(redisUrl: string): Promise<StartMessage> {
  const conn = createRedis(redisUrl, 'worker');
  process.stdout.write('READY\n');
  const reply = await conn.blpop(GO_KEY, 0);
  conn.disconnect();
  return JSON.parse(reply?.[1] ?? '{}') as StartMessage;
}

/** Parent side: waits until every child printed READY (or one died). */
export async function waitReady(procs: readonly SpawnedProcess[], timeoutMs: number, marker = /^READY$/m): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!procs.every((p) => marker.test(p.output()))) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`a bench process exited before it was ready:\n${dead.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`bench processes not ready within ${timeoutMs} ms:\n${procs.map((p) => p.output().slice(-500)).join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function release(redis: Redis, children: number, durationMs: number): Promise<StartMessage> {
  const goAt = Date.now();
  const message: StartMessage = { goAt, deadline: goAt + durationMs };
  await redis.rpush(GO_KEY, ...Array.from({ length: children }, () => JSON.stringify(message)));
  return message;
}

/** The `RESULT {...}` line a child printed. */
export function resultOf<T>(proc: SpawnedProcess): T {
  const match = /^RESULT (.*)$/m.exec(proc.output());
  if (!match?.[1]) throw new Error(`no RESULT line from a bench process:\n${proc.output().slice(-3000)}`);
  return JSON.parse(match[1]) as T;
}
