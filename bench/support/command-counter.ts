import { Redis } from 'ioredis';

/**
 * Counts the commands this process sends to Redis (one per request written to a socket;
 * EVALSHA counts once however many commands its script runs), in total and by name.
 * Patches the one ioredis class every workspace package shares, so install it before the
 * code under test runs.
 */
export interface CommandCounter {
  /** Commands sent since the last reset. */
  readonly count: number;
  /** The same, by command name. */
  byName(): Record<string, number>;
  reset(): void;
}

interface CounterState {
  count: number;
  names: Map<string, number>;
}

let installed: CounterState | undefined;

export function installCommandCounter(): CommandCounter {
  if (!installed) {
    const state: CounterState = { count: 0, names: new Map() };
    const proto = Redis.prototype as unknown as { sendCommand: (command: { name?: string }, ...rest: unknown[]) => unknown };
    const original = proto.sendCommand;
    proto.sendCommand = function (this: unknown, command: { name?: string }, ...rest: unknown[]) {
      state.count += 1;
      const name = command?.name ?? '?';
      state.names.set(name, (state.names.get(name) ?? 0) + 1);
      return original.call(this, command, ...rest);
    };
    installed = state;
  }
  const state = installed;
  return {
    get count() {
      return state.count;
    },
    byName: () => Object.fromEntries([...state.names].sort((a, b) => b[1] - a[1])),
    reset() {
      state.count = 0;
      state.names.clear();
    },
  };
}

/** The line a bench process prints at exit, read back by `readCommandLine`. */
export function commandLine(counter: CommandCounter): string {
  return `BENCH_COMMANDS ${counter.count} ${JSON.stringify(counter.byName())}\n`;
}

export function readCommandLine(output: string): { count: number; byName: Record<string, number> } {
  const match = /BENCH_COMMANDS (\d+) (\{.*\})/.exec(output);
  return match ? { count: Number(match[1]), byName: JSON.parse(match[2] ?? '{}') as Record<string, number> } : { count: Number.NaN, byName: {} };
}
