import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { appEntry } from './app-entry.js';

export interface WorkerFleet {
  pids: number[];
  /** Resolves when every worker has exited (on its own or stopped). */
  allExited: Promise<void>;
  /**
   * SIGTERM to each live worker (it finishes or hands back its active jobs within its
   * grace period), SIGKILL to any still alive after `graceMs`.
   */
  stop(graceMs: number): Promise<void>;
  /** SIGKILL to every live worker, at once (a second Ctrl+C, or brandq exiting). */
  kill(): void;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts `count` worker processes on this machine, with the same Node.js flags as this
 * process (so they run from source or from the build as brandq does), their output
 * appended to `logPath`. Each gets its own process group: a Ctrl+C in the terminal reaches
 * brandq alone, which stops them once, gracefully.
 */
export function startWorkerFleet(opts: { count: number; concurrency?: number | undefined; logPath: string }): WorkerFleet {
  const log = openSync(opts.logPath, 'a');
  const args = [...process.execArgv, appEntry('worker'), ...(opts.concurrency === undefined ? [] : ['--concurrency', String(opts.concurrency)])];
  const children = Array.from({ length: opts.count }, () =>
    spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], env: process.env }),
  );
  closeSync(log);
  const alive = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const kill = () => {
    for (const child of alive()) child.kill('SIGKILL');
  };
  // Whatever ends brandq (an error, process.exit), no worker it started outlives it.
  process.once('exit', kill);
  const allExited = Promise.all(children.map(exited)).then(() => undefined);
  return {
    pids: children.map((c) => c.pid as number),
    allExited,
    kill,
    async stop(graceMs: number) {
      for (const child of alive()) child.kill('SIGTERM');
      const timer = setTimeout(kill, graceMs);
      await allExited;
      clearTimeout(timer);
      process.removeListener('exit', kill);
    },
  };
}
