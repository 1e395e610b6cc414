import type { Provider } from '@brandq/errors';
import type { CallUsage, PaidProvider } from '@brandq/ledger';

/** Hooks for metrics; the pipeline stays free of any metrics library. */
export interface PipelineObserver {
  /** A provider call finished: `outcome` is `ok` or the failure class. */
  providerCall(provider: Provider, seconds: number, outcome: string): void;
  /** Money and tokens booked for a call of `runId`. */
  booked(runId: string, provider: PaidProvider, usage: CallUsage): void;
  /** A provider answered 429. */
  rateLimited(provider: Provider): void;
  /** An answer came from the cache: no call made. */
  cacheHit(provider: Provider): void;
  /** A call of `runId` cost `micros` more than its reservation. */
  overrun(runId: string, provider: PaidProvider, micros: number): void;
  /** A call of `runId` may have been billed without an answer: its worst case `micros` is booked as unconfirmed. */
  unconfirmed(runId: string, provider: PaidProvider, micros: number): void;
  /** A write that must not be lost (`what`: a paid result) waits for a full or unreachable Redis. */
  redisRetry(what: string): void;
}

export const silentObserver: PipelineObserver = {
  providerCall: () => undefined,
  booked: () => undefined,
  rateLimited: () => undefined,
  cacheHit: () => undefined,
  overrun: () => undefined,
  unconfirmed: () => undefined,
  redisRetry: () => undefined,
};
