import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

export interface ScriptDefinition {
  /** Command name registered on the client, e.g. `brandqAcquire`. */
  name: string;
  /** Absolute URL of the `.lua` file. */
  file: URL;
  numberOfKeys: number;
}

const sources = new Map<string, string>();

function source(file: URL): string {
  let text = sources.get(file.href);
  if (text === undefined) {
    text = readFileSync(file, 'utf8');
    sources.set(file.href, text);
  }
  return text;
}

/**
 * Registers Lua scripts on a client once (`defineCommand`), so ioredis sends EVALSHA
 * and falls back to EVAL on NOSCRIPT, e.g. after a Redis restart.
 */
export function defineScripts(client: Redis, scripts: readonly ScriptDefinition[]): void {
  for (const script of scripts) {
    if ((client as unknown as Record<string, unknown>)[script.name] !== undefined) continue;
    client.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: source(script.file) });
  }
}
