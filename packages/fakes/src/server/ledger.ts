export type ProviderName = 'openai' | 'tavily' | 'sheets';

/** What a fault did to a request; `null` on entries served normally. */
export type FaultKind = 'status' | 'timeout' | 'malformed' | 'reset' | 'bad-json-content';

/** One range written by a Sheets write call. */
export interface SheetWrite {
  range: string;
  updatedRange: string;
  updatedCells: number;
  valueInputOption: string;
  /** USER_ENTERED made Sheets evaluate at least one `=...` value as a formula. */
  formulaWritten: boolean;
}

/**
 * One HTTP request as the fake provider saw it. Entries are pushed when a request
 * arrives (status 0 while in flight) and completed in place, so hanging requests
 * are visible too.
 */
export interface LedgerEntry {
  id: number;
  provider: ProviderName;
  /** Epoch ms when the request arrived; also the instant the fake's limiter attributes it to. */
  at: number;
  /** Epoch ms when the answer was sent or the socket closed; null while in flight. */
  completedAt: number | null;
  method: string;
  path: string;
  /** The client's TCP port: tells which process sent the request (tests map ports to pids). */
  clientPort?: number;
  /** Brand (LLM), query (Tavily) or range(s) (Sheets): what faults match against. */
  subject: string | null;
  /** LLM: the `Brand:` line; Tavily: brand found in the query (quoted text or a known brand). */
  brand: string | null;
  /** HTTP status sent; 0 when no HTTP answer was sent (timeout fault, reset, still in flight). */
  status: number;
  authorized: boolean;
  /** Let through by the fake's own rate limiter (401/400/429-by-limiter answers are not). */
  admitted: boolean;
  /**
   * Counted in the fake's limiter windows: every admitted request, and a request its
   * limiter refused with a 429 while `countRejected` is on (the default, as OpenAI counts them).
   */
  counted: boolean;
  /**
   * Tokens the provider counts for the request at admission (LLM: prompt incl. schema
   * + the output cap; else 0); in the TPM window when `counted`.
   */
  rateLimitTokens: number;
  fault: FaultKind | null;
  /** Error code in the answer (`rate_limit_exceeded`, `insufficient_quota`, ...), if any. */
  errorCode: string | null;
  /** On 429s (and other faults announcing a wait): the wait the fake announced. */
  retryAfterMs: number | null;
  /** Epoch ms until which the announced cooldown lasts (decision time + retryAfterMs). */
  cooldownUntil: number | null;
  rateLimitType: 'requests' | 'tokens' | null;
  /**
   * The provider billed this request: it was admitted and answered 2xx with a readable
   * body (a `malformed` answer is not billed; a `bad-json-content` one is). True even
   * when the price is 0, so a free model's calls still count as paid calls.
   */
  billed: boolean;
  /** Integer micro-dollars billed; non-zero only when `billed`. */
  costMicros: number;
  // LLM
  model?: string;
  /** Billed prompt tokens: the messages plus the `response_format` schema's tokens. */
  promptTokens?: number;
  /** The part of `promptTokens` that is the `response_format` json_schema. */
  schemaTokens?: number;
  /** The `response_format.json_schema.name` the request asked for (brandq names it after the recipe step). */
  schemaName?: string;
  completionTokens?: number;
  finishReason?: string;
  // Tavily
  query?: string;
  searchDepth?: string;
  credits?: number;
  // Sheets
  spreadsheetId?: string;
  valueInputOption?: string;
  formulaWritten?: boolean;
  writes?: SheetWrite[];
}

export type NewLedgerEntry = Pick<LedgerEntry, 'provider' | 'at' | 'method' | 'path' | 'clientPort'>;

/**
 * Every request a fake received, in arrival order, with summary helpers.
 * `entries()` returns a copy of the list (the entry objects are live: in-flight
 * requests complete in place).
 */
export class Ledger implements Iterable<LedgerEntry> {
  private list: LedgerEntry[] = [];
  private nextId = 1;

  /** Rebuilds a ledger from entries fetched over HTTP (`GET /__fake/ledger`). */
  static fromEntries(entries: readonly LedgerEntry[]): Ledger {
    const ledger = new Ledger();
    ledger.list = [...entries];
    ledger.nextId = entries.reduce((max, e) => Math.max(max, e.id), 0) + 1;
    return ledger;
  }

  entries(): LedgerEntry[] {
    return [...this.list];
  }

  get length(): number {
    return this.list.length;
  }

  [Symbol.iterator](): Iterator<LedgerEntry> {
    return this.list[Symbol.iterator]();
  }

  filter(predicate: (e: LedgerEntry) => boolean): LedgerEntry[] {
    return this.list.filter(predicate);
  }

  toJSON(): LedgerEntry[] {
    return this.list;
  }

  open(init: NewLedgerEntry): LedgerEntry {
    const entry: LedgerEntry = {
      id: this.nextId++,
      ...init,
      completedAt: null,
      subject: null,
      brand: null,
      status: 0,
      authorized: false,
      admitted: false,
      counted: false,
      rateLimitTokens: 0,
      fault: null,
      errorCode: null,
      retryAfterMs: null,
      cooldownUntil: null,
      rateLimitType: null,
      billed: false,
      costMicros: 0,
    };
    this.list.push(entry);
    return entry;
  }

  reset(): void {
    this.list = [];
  }

  /** Total billed micro-dollars (billed entries only). */
  billedMicros(): number {
    let sum = 0;
    for (const e of this) sum += e.costMicros;
    return sum;
  }

  /**
   * Paid calls per brand: billed entries (see `LedgerEntry.billed`) by their `brand`; entries
   * with no brand are left out (see `summary().paidCalls` for the total). The ground truth
   * for "one search and one LLM call per brand".
   */
  paidCallsByBrand(): Map<string, number> {
    return countByBrand(this.filter((e) => e.billed));
  }

  /**
   * Admitted calls per brand: what reached the provider past its limiter, including calls
   * that then failed (5xx, timeout, reset) and that a provider may bill anyway.
   */
  admittedCallsByBrand(): Map<string, number> {
    return countByBrand(this.filter((e) => e.admitted));
  }

  /** Requests about `brand`: exact LLM brand, or a Tavily query mentioning it (case-insensitive). */
  requestsFor(brand: string): LedgerEntry[] {
    const needle = brand.toLowerCase();
    return this.filter((e) => e.brand === brand || (e.query?.toLowerCase().includes(needle) ?? false));
  }

  withStatus(status: number): LedgerEntry[] {
    return this.filter((e) => e.status === status);
  }

  /** Largest number of admitted requests inside any sliding window of `windowMs`. */
  maxRequestsInAnyWindow(windowMs: number, include: (e: LedgerEntry) => boolean = (e) => e.admitted): number {
    return maxInAnyWindow(this.filter(include), windowMs, () => 1);
  }

  /** Largest sum of tokens charged at admission inside any sliding window of `windowMs`. */
  maxTokensInAnyWindow(windowMs: number, include: (e: LedgerEntry) => boolean = (e) => e.admitted): number {
    return maxInAnyWindow(this.filter(include), windowMs, (e) => e.rateLimitTokens);
  }

  /**
   * Requests that arrived while a cooldown announced by an earlier 429 was still
   * running. The cooldown starts when that 429 was sent (the client cannot know
   * earlier); `graceMs` tolerates requests that were already on the wire.
   */
  cooldownViolations(graceMs = 0): LedgerEntry[] {
    const cooldowns = this.filter((c) => c.cooldownUntil !== null && c.completedAt !== null);
    return this.filter((e) =>
      cooldowns.some(
        (c) => c !== e && e.at > (c.completedAt ?? 0) + graceMs && e.at < (c.cooldownUntil ?? 0),
      ),
    );
  }

  summary(): LedgerSummary {
    const byStatus: Record<string, number> = {};
    for (const e of this) byStatus[String(e.status)] = (byStatus[String(e.status)] ?? 0) + 1;
    return {
      requests: this.length,
      admitted: this.filter((e) => e.admitted).length,
      byStatus,
      billedMicros: this.billedMicros(),
      paidCalls: this.filter((e) => e.billed).length,
      paidCallsByBrand: Object.fromEntries(this.paidCallsByBrand()),
      admittedCallsByBrand: Object.fromEntries(this.admittedCallsByBrand()),
      promptTokens: sumBilled(this.list, (e) => e.promptTokens),
      completionTokens: sumBilled(this.list, (e) => e.completionTokens),
      credits: sumBilled(this.list, (e) => e.credits),
    };
  }
}

export interface LedgerSummary {
  requests: number;
  admitted: number;
  byStatus: Record<string, number>;
  billedMicros: number;
  /** Billed requests (`LedgerEntry.billed`), with or without a brand. */
  paidCalls: number;
  /** `Ledger.paidCallsByBrand()` as a JSON object. */
  paidCallsByBrand: Record<string, number>;
  /** `Ledger.admittedCallsByBrand()` as a JSON object. */
  admittedCallsByBrand: Record<string, number>;
  /** Tokens and credits of billed entries. */
  promptTokens: number;
  completionTokens: number;
  credits: number;
}

function sumBilled(entries: LedgerEntry[], pick: (e: LedgerEntry) => number | undefined): number {
  let sum = 0;
  for (const e of entries) if (e.billed) sum += pick(e) ?? 0;
  return sum;
}

function countByBrand(entries: readonly LedgerEntry[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of entries) if (e.brand !== null) counts.set(e.brand, (counts.get(e.brand) ?? 0) + 1);
  return counts;
}

/** Two-pointer max over windows [t, t + windowMs), the same half-open rule as SlidingWindow. */
function maxInAnyWindow(entries: LedgerEntry[], windowMs: number, weight: (e: LedgerEntry) => number): number {
  const sorted = [...entries].sort((a, b) => a.at - b.at);
  let best = 0;
  let sum = 0;
  let start = 0;
  for (const e of sorted) {
    sum += weight(e);
    while (start < sorted.length) {
      const first = sorted[start];
      if (!first || e.at - first.at < windowMs) break;
      sum -= weight(first);
      start++;
    }
    best = Math.max(best, sum);
  }
  return best;
}
