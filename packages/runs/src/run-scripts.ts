import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { runKeyList } from '@brandq/redis';

/** How many keys a run has: the scripts that apply retention take them all after their own. */
const RUN_KEY_COUNT = runKeyList('x').length;

function lua(name: string): URL {
  return new URL(`../lua/${name}.lua`, import.meta.url);
}

const RETENTION_PRELUDE = lua('retention');
const TIMELINE_PRELUDE = lua('timeline');

interface RunScript {
  name: string;
  file: URL;
  /** How many keys the script names itself; those with `allRunKeys` take every key of the run after them. */
  ownKeys: number;
  allRunKeys: boolean;
  /** Whether the script applies the run's retention (gets retention.lua in front). */
  retention: boolean;
  /** Whether the script records into the run's timeline (gets timeline.lua in front). */
  timeline?: boolean;
}

const SCRIPTS: readonly RunScript[] = [
  { name: 'brandqRecordOutcome', file: lua('record-outcome'), ownKeys: 5, allRunKeys: true, retention: true, timeline: true },
  { name: 'brandqRecordTimeline', file: lua('record-timeline'), ownKeys: 2, allRunKeys: false, retention: false, timeline: true },
  { name: 'brandqReopenBrands', file: lua('reopen-brands'), ownKeys: 2, allRunKeys: true, retention: true },
  { name: 'brandqCreateOrExtendRun', file: lua('create-or-extend-run'), ownKeys: 4, allRunKeys: true, retention: true },
  { name: 'brandqSetRunStatus', file: lua('set-run-status'), ownKeys: 1, allRunKeys: true, retention: true },
  { name: 'brandqMarkBudgetExhausted', file: lua('mark-budget-exhausted'), ownKeys: 2, allRunKeys: false, retention: false },
  { name: 'brandqForgetLatestRun', file: lua('forget-latest-run'), ownKeys: 1, allRunKeys: false, retention: false },
  { name: 'brandqDropVanishedRun', file: lua('drop-vanished-run'), ownKeys: 1, allRunKeys: true, retention: false },
  { name: 'brandqDeleteEndedRun', file: lua('delete-ended-run'), ownKeys: 1, allRunKeys: true, retention: false },
  { name: 'brandqSetRunFields', file: lua('set-run-fields'), ownKeys: 1, allRunKeys: false, retention: false },
  { name: 'brandqAppendHistory', file: lua('append-history'), ownKeys: 2, allRunKeys: false, retention: false },
];

let sources: Map<string, string> | undefined;

/** Each script's text, with the retention and timeline functions in front of those that use them (Lua has no include). */
function scriptSources(): Map<string, string> {
  if (!sources) {
    const retention = readFileSync(RETENTION_PRELUDE, 'utf8');
    const timeline = readFileSync(TIMELINE_PRELUDE, 'utf8');
    sources = new Map(SCRIPTS.map((s) => [s.name, (s.retention ? retention : '') + (s.timeline ? timeline : '') + readFileSync(s.file, 'utf8')]));
  }
  return sources;
}

/** Registers the run scripts on a client once (EVALSHA, with EVAL on NOSCRIPT), like `defineScripts`. */
export function defineRunScripts(client: Redis): void {
  const texts = scriptSources();
  for (const script of SCRIPTS) {
    if ((client as unknown as Record<string, unknown>)[script.name] !== undefined) continue;
    const numberOfKeys = script.ownKeys + (script.allRunKeys ? RUN_KEY_COUNT : 0);
    client.defineCommand(script.name, { numberOfKeys, lua: texts.get(script.name) as string });
  }
}
