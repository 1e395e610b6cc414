import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface SpawnedProcess {
  child: ChildProcess;
  /** Everything the process wrote so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Spawns a TypeScript entry point of this repository as a real OS process (through tsx,
 * with the workspace's source condition), the way `pnpm worker` does.
 */
export function spawnTs(
  entry: string,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
  stdio: 'pipe' | 'inherit' = 'pipe',
): SpawnedProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@brandq/source', entry, ...args],
    { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', stdio, stdio] },
  );
  let text = '';
  const append = (chunk: Buffer) => {
    text += chunk.toString();
    if (text.length > 2_000_000) text = text.slice(-1_000_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  return { child, output: () => text, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
}

export async function waitForExit(proc: SpawnedProcess, timeoutMs: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms:\n${proc.output().slice(-4000)}`)), timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
