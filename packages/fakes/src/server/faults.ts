import type { Prng } from './prng.js';

/** Restricts a scripted fault to some requests; without either field it hits the next request. */
export interface FaultFilter {
  /** LLM: exact brand; Tavily: query mentions it (case-insensitive); Sheets: exact range. */
  brand?: string;
  /** Called with the brand (LLM), query (Tavily) or range (Sheets); not available over HTTP. */
  match?: (subject: string) => boolean;
}

export interface StatusFault extends FaultFilter {
  kind?: 'status';
  status: number;
  /** Provider error code, e.g. OpenAI `insufficient_quota`. */
  code?: string;
  message?: string;
  /** Announced wait (retry headers + ledger); 429s default to 1000 ms. */
  retryAfterMs?: number;
  /** OpenRouter error metadata, e.g. `{ limit_source: 'openrouter_key_limit' }`. */
  metadata?: Record<string, unknown>;
}

export interface TimeoutFault extends FaultFilter {
  /** Accept the request, say nothing for `ms` (default: the server's `timeoutFaultMs`), then close the socket. */
  kind: 'timeout';
  ms?: number;
}

export interface MalformedFault extends FaultFilter {
  /** 200 with a body that is not JSON. */
  kind: 'malformed';
}

export interface ResetFault extends FaultFilter {
  /** Destroy the socket without an answer. */
  kind: 'reset';
}

export interface BadJsonContentFault extends FaultFilter {
  /** LLM only: a billed 200 whose message content is not JSON, or JSON of the wrong shape. Elsewhere: like `malformed`. */
  kind: 'bad-json-content';
  variant?: 'not-json' | 'wrong-schema';
}

export type Fault = StatusFault | TimeoutFault | MalformedFault | ResetFault | BadJsonContentFault;

/** Probabilities (0..1) per admitted request, drawn from the seeded PRNG. */
export interface FaultRates {
  429?: number;
  500?: number;
  timeout?: number;
}

export function isStatusFault(fault: Fault): fault is StatusFault {
  return 'status' in fault;
}

/**
 * FIFO of scripted faults. A request takes the first queued fault whose filter
 * accepts it, so filtered faults wait for their brand without blocking others.
 */
export class FaultQueue {
  private queue: Fault[] = [];

  constructor(private readonly matchesBrand: (subject: string, brand: string) => boolean) {}

  push(faults: readonly Fault[]): void {
    this.queue.push(...faults);
  }

  get size(): number {
    return this.queue.length;
  }

  take(subject: string | null): Fault | null {
    const index = this.queue.findIndex((f) => this.accepts(f, subject));
    if (index < 0) return null;
    const [fault] = this.queue.splice(index, 1);
    return fault ?? null;
  }

  clear(): void {
    this.queue = [];
  }

  private accepts(fault: Fault, subject: string | null): boolean {
    if (fault.brand === undefined && fault.match === undefined) return true;
    if (subject === null) return false;
    if (fault.brand !== undefined && !this.matchesBrand(subject, fault.brand)) return false;
    if (fault.match !== undefined && !fault.match(subject)) return false;
    return true;
  }
}

/** One draw per admitted request; the cumulative layout keeps draws stable when a rate is 0. */
export function drawRandomFault(rates: FaultRates | undefined, prng: Prng): Fault | null {
  if (!rates) return null;
  const r = prng.next();
  let edge = rates[429] ?? 0;
  if (r < edge) return { status: 429 };
  edge += rates[500] ?? 0;
  if (r < edge) return { status: 500 };
  edge += rates.timeout ?? 0;
  if (r < edge) return { kind: 'timeout' };
  return null;
}
