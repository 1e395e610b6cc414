import type { LlmTier } from '../openai/tiers.js';

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
  /**
   * The tier the chat completion was asked in and billed at (`costMicros` is at the tier's
   * price): set on chat completion requests once their model and `service_tier` are read, and
   * on batch lines; absent on other requests (models, files, batches endpoints).
   */
  tier?: LlmTier;
  /** Batch lines: the batch that ran this line (the entry is the line's execution, not an HTTP request). */
  batchId?: string;
  /** Batch lines: the line's `custom_id`. */
  customId?: string;
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

export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

/**
 * One batch created on the fake OpenAI's Batch API, live while it runs (status, counts,
 * files). The ground truth for "no request submitted twice, none lost".
 */
export interface LedgerBatch {
  id: string;
  inputFileId: string;
  metadata: Record<string, string> | null;
  /** The model of its lines; null when the file failed validation before one was read. */
  model: string | null;
  /** Requests (non-blank lines) in the input file. */
  lineCount: number;
  /** The lines' custom_ids in file order; empty when the file itself failed validation. */
  customIds: string[];
  status: BatchStatus;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms when it reached completed, failed, expired or cancelled; null before. */
  endedAt: number | null;
  /** Tokens it holds in the model's enqueued-token queue while unfinished (prompt + max tokens per line). */
  enqueuedTokens: number;
  /** Lines answered 200 (in the output file, billed). */
  completed: number;
  /** Lines in the error file: injected failures, bad request bodies, and lines an expiry cut off. */
  failed: number;
  /** Micro-dollars billed for its lines at the batch price. */
  billedMicros: number;
  /** `errors.data[].code` of a batch that failed (validation, enqueued-token limit). */
  errorCodes: string[];
  outputFileId: string | null;
  errorFileId: string | null;
}

/** Requests, paid calls and billed micros of one tier (chat requests and batch lines). */
export interface TierTotals {
  /** Ledger entries of the tier: chat requests whatever their outcome, and executed batch lines. */
  requests: number;
  paidCalls: number;
  billedMicros: number;
  promptTokens: number;
  completionTokens: number;
}

/**
 * Every request a fake received, in arrival order, with summary helpers.
 * `entries()` returns a copy of the list (the entry objects are live: in-flight
 * requests complete in place).
 */
export class Ledger implements Iterable<LedgerEntry> {
  private list: LedgerEntry[] = [];
  private batchList: LedgerBatch[] = [];
  private nextId = 1;

  /** Rebuilds a ledger from entries (and batches) fetched over HTTP (`GET /__fake/ledger`). */
  static fromEntries(entries: readonly LedgerEntry[], batches: readonly LedgerBatch[] = []): Ledger {
    const ledger = new Ledger();
    ledger.list = [...entries];
    ledger.batchList = [...batches];
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
    this.batchList = [];
  }

  /** Adds a batch the fake OpenAI created; the record stays live (the fake updates it in place). */
  recordBatch(batch: LedgerBatch): void {
    this.batchList.push(batch);
  }

  /** Every batch created, in creation order. */
  batches(): LedgerBatch[] {
    return [...this.batchList];
  }

  /** custom_id -> the batches (any status, in creation order) whose input file held it. */
  batchIdsByCustomId(): Map<string, string[]> {
    const byId = new Map<string, string[]>();
    for (const b of this.batchList) {
      for (const id of b.customIds) {
        const ids = byId.get(id);
        if (ids) ids.push(b.id);
        else byId.set(id, [b.id]);
      }
    }
    return byId;
  }

  /**
   * custom_ids submitted in more than one batch that did not fail validation (a failed batch
   * ran nothing, so submitting its lines again is no double submission). Resubmitting the
   * lines an expiry cut off shows here too: see `batchCustomIdsBilledTwice` for double billing.
   */
  batchCustomIdsInSeveralBatches(): string[] {
    const counts = new Map<string, number>();
    for (const b of this.batchList) {
      if (b.status === 'failed') continue;
      for (const id of b.customIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** custom_ids of batch lines billed more than once, across all batches. */
  batchCustomIdsBilledTwice(): string[] {
    const counts = new Map<string, number>();
    for (const e of this) if (e.billed && e.customId !== undefined) counts.set(e.customId, (counts.get(e.customId) ?? 0) + 1);
    return [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** Totals per tier of the chat requests and batch lines (entries without a tier are left out). */
  tierTotals(): Record<LlmTier, TierTotals> {
    const totals = { standard: emptyTierTotals(), flex: emptyTierTotals(), batch: emptyTierTotals() };
    for (const e of this) {
      if (e.tier === undefined) continue;
      const t = totals[e.tier];
      t.requests++;
      if (!e.billed) continue;
      t.paidCalls++;
      t.billedMicros += e.costMicros;
      t.promptTokens += e.promptTokens ?? 0;
      t.completionTokens += e.completionTokens ?? 0;
    }
    return totals;
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
      byTier: this.tierTotals(),
      batches: this.batches(),
      batchCustomIdsInSeveralBatches: this.batchCustomIdsInSeveralBatches(),
      batchCustomIdsBilledTwice: this.batchCustomIdsBilledTwice(),
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
  /** `Ledger.tierTotals()`: LLM requests and bills per tier (standard, flex, batch). */
  byTier: Record<LlmTier, TierTotals>;
  /** Every batch created on the fake OpenAI (`Ledger.batches()`). */
  batches: LedgerBatch[];
  batchCustomIdsInSeveralBatches: string[];
  batchCustomIdsBilledTwice: string[];
}

function emptyTierTotals(): TierTotals {
  return { requests: 0, paidCalls: 0, billedMicros: 0, promptTokens: 0, completionTokens: 0 };
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
