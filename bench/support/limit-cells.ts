/**
 * One cell of the limiter benchmark: N caller processes of one limiter variant, either
 * saturating a strict fake LLM or probing admission latency with limits out of the way.
 * Shared by `pnpm bench:limits` and the latency part of `pnpm bench`.
 */
import type { Redis } from 'ioredis';
import type { CallerResult, CellLimits, Variant } from '../limits-caller.js';
import { percentile } from './report.js';
import { commandsProcessed } from './redis-info.js';
import { release, resultOf, waitReady } from './start-line.js';
import { benchPromptTokens } from './workload.js';
import { spawnTs, startFakeOpenAI, waitForExit, type LedgerEntry, type SpawnedProcess } from './workspace.js';

export type { CellLimits, Variant };

export const ALL_VARIANTS: Variant[] = ['brandq', 'bottleneck', 'rlf', 'inproc'];
export const LABEL: Record<Variant, string> = {
  brandq: 'brandq (Redis, Lua)',
  bottleneck: 'Bottleneck (ioredis clustering)',
  rlf: 'rate-limiter-flexible (Redis)',
  inproc: 'in-process per worker (original)',
};

export const PARALLEL = 4;
export const PROBE_PARALLEL = 2;
export const PROBE_CALL_MS = 50;
export const PROBE_MS = 6000;
export const LATENCY = { min: 50, max: 150 };

/**
 * Limits scaled to the workload: 10 requests a second; a token limit that the calls'
 * actual usage fits under (requests bind) but their reservations (prompt + max output)
 * do not, so a limiter that never gives back unused reservations would bind on tokens.
 */
export function cellLimits(windowMs: number): CellLimits {
  const rpm = Math.round(windowMs / 100);
  const maxOutputTokens = 400;
  const prompt = benchPromptTokens(99999, 999);
  const typicalCompletion = 50;
  const tpmHeadroom = 0.15;
  const effective = (rpm * (prompt + typicalCompletion + prompt + maxOutputTokens)) / 2;
  return { windowMs, rpm, burst: 10, tpm: Math.ceil(effective / (1 - tpmHeadroom)), tpmHeadroom, maxConcurrency: 8, maxOutputTokens };
}

export interface Cell {
  variant: Variant;
  processes: number;
  mode: 'saturate' | 'probe';
  error?: string;
  calls: number;
  ok: number;
  limited: number;
  errors: number;
  /** Accepted requests and tokens per window in the measured part, and their share of the limit. */
  requestsPerWindow: number;
  tokensPerWindow: number;
  requestShare: number;
  tokenShare: number;
  /** Most requests sent (accepted or not) and tokens accepted in any sliding window. */
  worstWindowRequests: number;
  worstWindowTokens: number;
  admitP50Ms: number;
  admitP99Ms: number;
  admissionsPerSecond: number;
  clientCommandsPerCall: number;
  serverCommandsPerCall: number;
  durationMs: number;
}

function inWindow(entries: LedgerEntry[], from: number, to: number): LedgerEntry[] {
  return entries.filter((e) => e.at >= from && e.at < to);
}

export async function runCell(
  admin: Redis,
  redisUrl: string,
  limits: CellLimits,
  variant: Variant,
  processes: number,
  mode: 'saturate' | 'probe',
  measuredWindows = 2,
): Promise<Cell> {
  await admin.flushall();
  const saturate = mode === 'saturate';
  const fake = saturate ? await startFakeOpenAI({ rpm: limits.rpm, tpm: limits.tpm, windowMs: limits.windowMs, latencyMs: LATENCY, seed: 7 }) : undefined;
  const cellLimits: CellLimits = saturate ? limits : { ...limits, rpm: 1_000_000, burst: 100_000, tpm: 1_000_000_000, maxConcurrency: 10_000 };
  const warmupMs = limits.windowMs / 2;
  const durationMs = saturate ? warmupMs + measuredWindows * limits.windowMs : PROBE_MS;
  const env = {
    VARIANT: variant,
    MODE: mode,
    LIMITS: JSON.stringify(cellLimits),
    REDIS_URL: redisUrl,
    PARALLEL: String(saturate ? PARALLEL : PROBE_PARALLEL),
    TARGET: fake?.url ?? '',
    PROBE_CALL_MS: String(PROBE_CALL_MS),
  };
  const base = {
    variant,
    processes,
    mode,
    calls: 0,
    ok: 0,
    limited: 0,
    errors: 0,
    requestsPerWindow: Number.NaN,
    tokensPerWindow: Number.NaN,
    requestShare: Number.NaN,
    tokenShare: Number.NaN,
    worstWindowRequests: Number.NaN,
    worstWindowTokens: Number.NaN,
    admitP50Ms: Number.NaN,
    admitP99Ms: Number.NaN,
    admissionsPerSecond: Number.NaN,
    clientCommandsPerCall: Number.NaN,
    serverCommandsPerCall: Number.NaN,
    durationMs,
  };
  const procs: SpawnedProcess[] = Array.from({ length: processes }, () => spawnTs('bench/limits-caller.ts', [], env));
  try {
    await waitReady(procs, 90_000);
    const before = await commandsProcessed(admin);
    const start = await release(admin, processes, durationMs);
    const codes = await Promise.all(procs.map((p) => waitForExit(p, durationMs + 90_000)));
    const serverCommands = (await commandsProcessed(admin)) - before - 1;
    const bad = codes.findIndex((c) => c !== 0);
    if (bad >= 0) throw new Error(`a ${variant} process exited with ${codes[bad]}: ${procs[bad]?.output().slice(-1500)}`);
    const results = procs.map((p) => resultOf<CallerResult>(p));
    const calls = results.reduce((s, r) => s + r.calls, 0);
    const admit = results.flatMap((r) => r.admitMs);
    const cell: Cell = {
      ...base,
      calls,
      ok: results.reduce((s, r) => s + r.ok, 0),
      limited: results.reduce((s, r) => s + r.limited, 0),
      errors: results.reduce((s, r) => s + r.errors, 0),
      admitP50Ms: percentile(admit, 50),
      admitP99Ms: percentile(admit, 99),
      admissionsPerSecond: calls / (durationMs / 1000),
      clientCommandsPerCall: results.reduce((s, r) => s + r.commands, 0) / calls,
      serverCommandsPerCall: serverCommands / calls,
    };
    const firstError = results.find((r) => r.firstError)?.firstError;
    if (firstError) cell.error = firstError;
    if (fake) {
      const entries = fake.ledger.entries();
      const from = start.goAt + warmupMs;
      const measured = inWindow(entries, from, from + measuredWindows * limits.windowMs).filter((e) => e.status === 200);
      cell.requestsPerWindow = measured.length / measuredWindows;
      cell.tokensPerWindow = measured.reduce((s, e) => s + e.rateLimitTokens, 0) / measuredWindows;
      cell.requestShare = cell.requestsPerWindow / limits.rpm;
      cell.tokenShare = cell.tokensPerWindow / limits.tpm;
      cell.worstWindowRequests = fake.ledger.maxRequestsInAnyWindow(limits.windowMs, (e) => e.authorized);
      cell.worstWindowTokens = fake.ledger.maxTokensInAnyWindow(limits.windowMs);
      cell.limited = fake.ledger.withStatus(429).length;
    }
    return cell;
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.kill('SIGKILL');
    await fake?.close();
  }
}

