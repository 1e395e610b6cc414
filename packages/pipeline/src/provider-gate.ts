import type { Provider } from '@brandq/errors';

/** A right to make one provider call, given by the shared limiter. */
export interface GatePermit {
  /** The call was made: book its real token usage and free the concurrency slot. */
  settle(usage?: { usedTokens?: number }): Promise<unknown>;
  /** The call was never sent: give everything back. */
  release(): Promise<unknown>;
}

/**
 * What the pipeline needs from the shared limiter. Kept narrow so the pipeline does not
 * care whether the limits live in Redis (the fleet) or in memory (a unit test).
 */
export interface ProviderGate {
  /** `priority: 'finalize'` starts the call only under the fleet's lower finalize concurrency. */
  acquire(provider: Provider, request: { tokens?: number; priority?: 'default' | 'finalize'; signal?: AbortSignal }): Promise<GatePermit>;
  /** A provider said 429: hold every worker until the wait is over. */
  cooldown(provider: Provider, retryAfterMs: number): Promise<void>;
  /** Correct the shared state from the provider's own rate-limit headers. */
  syncFromHeaders(provider: Provider, headers: Headers | Record<string, string>): Promise<void>;
}

/**
 * Fair shares between runs, as the pipeline sees them: a run's own ceiling (`--max-rpm`),
 * checked before the shared limiter so a capped call never waits holding a worker slot,
 * and each call the limiter admitted, counted for the run's measured share.
 */
export interface RunCallShares {
  /** 0 when a call of `runId` may start at `provider` under its ceiling (the call is counted), else the ms until it may. */
  admitUnderCeiling(runId: string, provider: Provider, maxRpm: number): Promise<number>;
  /** The shared limiter admitted a call of `runId` at `provider`. Never throws, never waits. */
  admitted(runId: string, provider: Provider): void;
}
