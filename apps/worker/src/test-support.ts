import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Fakes } from '@brandq/fakes';
import type { RunMeta, RunStore } from '@brandq/runs';
import { spawnTs, waitForExit, type SpawnedProcess } from '@brandq/testing';

/**
 * Limits out of the way, for tests about something other than the limiter. They stay at
 * the fakes' own defaults (10,000 requests, 10M tokens a minute): the limiter tightens its
 * state from the provider's rate-limit headers, so configuring more than the provider
 * grants would only hold workers until the provider's reset.
 */
export const OPEN_LIMITS = {
  OPENAI_RPM_LIMIT: '10000',
  OPENAI_RPM_BURST: '1000',
  OPENAI_TPM_LIMIT: '10000000',
  OPENAI_MAX_CONCURRENCY: '64',
  TAVILY_RPM_LIMIT: '100000',
  TAVILY_RPM_BURST: '1000',
  TAVILY_MAX_CONCURRENCY: '64',
  SHEETS_RPM_LIMIT: '6000',
  SHEETS_RPM_BURST: '100',
};

export function workerEnv(fakes: Fakes, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...fakes.env, REDIS_URL: redisUrl, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', JOB_LOCK_SECONDS: '3', ...OPEN_LIMITS, ...extra };
}

export async function writeBrandsCsv(dir: string, names: readonly string[], file = 'brands.csv'): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, `brand\n${names.map((n) => (/[",]/.test(n) ? `"${n.replace(/"/g, '""')}"` : n)).join('\n')}\n`);
  return path;
}

export async function enqueue(args: string[], env: Record<string, string>): Promise<SpawnedProcess> {
  const proc = spawnTs('apps/producer/src/enqueue.ts', [...args, '--no-follow'], env);
  const code = await waitForExit(proc, 60_000);
  if (code !== 0) throw new Error(`enqueue ${args.join(' ')} exited ${code}:\n${proc.output()}`);
  return proc;
}

/** Polls the run until `done(run)` holds (the run's state in Redis is the condition, not time). */
export async function waitForRun(runs: RunStore, runId: string, done: (run: RunMeta) => boolean, timeoutMs: number): Promise<RunMeta> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.getRun(runId);
    if (run && done(run)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function startWorkers(n: number, env: Record<string, string>, concurrency = 8): SpawnedProcess[] {
  return Array.from({ length: n }, () => spawnTs('apps/worker/src/main.ts', ['--concurrency', String(concurrency)], env));
}

export async function stopWorkers(workers: SpawnedProcess[]): Promise<void> {
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => waitForExit(w, 30_000).catch(() => w.kill('SIGKILL'))));
}

/** Polls `check` until it returns a value other than undefined/false (a condition, not a sleep). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs a producer CLI (`apps/producer/src/<name>.ts`) to completion and returns what it printed. */
export async function producerCli(name: string, args: string[], env: Record<string, string>): Promise<string> {
  const proc = spawnTs(`apps/producer/src/${name}.ts`, args, env);
  const code = await waitForExit(proc, 60_000);
  if (code !== 0) throw new Error(`${name} ${args.join(' ')} exited ${code}:\n${proc.output()}`);
  return proc.output();
}

/**
 * Waits until `n` worker processes are connected to the brand queue: past their start-up
 * (module loading is the heaviest CPU load they make), so a test's clock starts on a fleet
 * that is ready rather than on processes still competing for the CPU to boot.
 */
export async function waitForWorkersReady(queue: { getWorkersCount(): Promise<number> }, n: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(`${n} workers connected`, async () => (await queue.getWorkersCount()) >= n, timeoutMs, 200);
}
