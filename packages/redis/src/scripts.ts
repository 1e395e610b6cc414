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

/** `-- @include path/to/file.lua` (relative to the including file) is replaced by that file. */
const INCLUDE = /^-- @include (\S+)\s*$/gm;

/**
 * A script's text with its includes inlined: Redis runs each script on its own, so helpers
 * several scripts share are written once in a file of their own and copied in at load.
 */
function source(file: URL, including: readonly string[] = []): string {
  if (including.includes(file.href)) throw new Error(`Lua include cycle: ${[...including, file.href].join(' -> ')}`);
  let text = sources.get(file.href);
  if (text === undefined) {
    text = readFileSync(file, 'utf8').replace(INCLUDE, (_line, path: string) => source(new URL(path, file), [...including, file.href]).trimEnd());
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
