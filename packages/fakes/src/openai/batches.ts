import type { BatchStatus, Ledger, LedgerBatch, LedgerEntry } from '../server/ledger.js';
import { isRecord } from '../server/http-io.js';
import { parseBatchInput, type BatchError, type BatchInputLine } from './batch-input.js';
import { cursorPage, type FileStore } from './files.js';
import type { LlmError } from './openai-errors.js';

/** Batch API options of the fake OpenAI (all settable through `/__fake/config`). */
export interface BatchOptions {
  /**
   * Time from `batches.create` to `completed` (default 3000 ms): validating for the first
   * tenth, in_progress until 8/10 (lines answered evenly over it), then finalizing. Read
   * when a batch is created: a change applies to the batches created after it.
   */
  batchDelayMs?: number;
  /** Most requests per input file (default 50,000, OpenAI's); more fails validation with `too_many_tasks`. */
  batchMaxRequests?: number;
  /** Most bytes per input file (default 200,000,000, OpenAI's 200 MB); more fails validation with `file_too_large`. */
  batchMaxBytes?: number;
  /**
   * Enqueued tokens per model (default 10 billion: no limit in practice). A batch's tokens
   * (per line: prompt with schema + max_completion_tokens/max_tokens/defaultMaxTokens), counted
   * at creation, are held until the batch ends; a batch that would take its model over the
   * limit fails with `token_limit_exceeded`, as OpenAI's batch queue limit does.
   */
  batchEnqueuedTokenLimit?: number;
}

export const DEFAULT_BATCH_DELAY_MS = 3000;
export const DEFAULT_BATCH_MAX_REQUESTS = 50_000;
export const DEFAULT_BATCH_MAX_BYTES = 200_000_000;
export const DEFAULT_BATCH_ENQUEUED_TOKEN_LIMIT = 10_000_000_000;
/** The one endpoint the fake's batches run. */
export const BATCH_ENDPOINT = '/v1/chat/completions';
const COMPLETION_WINDOW_S = 24 * 3600;
/** How often running batches move on (only while one is unfinished). */
const TICK_MS = 20;

/**
 * Makes batch lines fail (they go to the error file with this status and error, unbilled):
 * the given `customIds` (each once, whichever batch runs it next), or else the next `count`
 * lines run (default 1).
 */
export interface BatchLineFailure {
  customIds?: string[];
  count?: number;
  /** HTTP status of the line's response (default 500). */
  status?: number;
  code?: string | null;
  message?: string;
}

/**
 * Makes the next batch created (that passes validation) expire once `afterLines` of its lines
 * have run (default 0: none): status `expired`, the lines run are in the output file and billed,
 * the rest in the error file with code `batch_expired`.
 */
export interface BatchExpiry {
  afterLines?: number;
}

/** What the fake OpenAI server lends the batch engine. */
export interface BatchHost {
  readonly ledger: Ledger;
  batchOptions(): BatchOptions;
  organization(): string;
  /** Tokens a line's body counts toward the enqueued-token limit. */
  enqueuedTokens(body: Record<string, unknown>): number;
  /**
   * Runs a line's body as a chat completion at the batch price, filling `entry` (model, brand,
   * tokens, cost). With `failure`, parses it the same way but answers that error, unbilled.
   */
  answerLine(body: Record<string, unknown>, entry: LedgerEntry, failure: LlmError | null): { status: number; body: unknown };
}

/** OpenAI's `Batch` object as the fake sends it (every field of the SDK's `Batch`). */
export type BatchObject = { id: string; object: 'batch'; status: BatchStatus } & Record<string, unknown>;

interface Usage {
  input: number;
  output: number;
}

interface BatchJob {
  record: LedgerBatch;
  seq: number;
  endpoint: string;
  completionWindow: string;
  delayMs: number;
  lines: BatchInputLine[];
  /** Index of the next line to run. */
  next: number;
  /** Errors reported when validation ends (the batch then fails). */
  validationErrors: BatchError[] | null;
  expireAfterLines: number | null;
  holdsQueue: boolean;
  times: Partial<Record<'in_progress_at' | 'finalizing_at' | 'completed_at' | 'failed_at' | 'expired_at' | 'cancelling_at' | 'cancelled_at', number>>;
  cancelRequestedAt: number | null;
  output: string[];
  errors: string[];
  usage: Usage;
}

type Queued = { failure: BatchLineFailure; customIds: Set<string> | null; remaining: number };

/**
 * OpenAI's Batch API over the fake's chat completions: batches move validating ->
 * in_progress -> finalizing -> completed on a timer, every line is answered like a chat
 * completion (same deterministic answer), billed at the batch price into the ledger, and
 * written to output/error files in OpenAI's JSONL shapes.
 */
export class BatchEngine {
  private readonly jobs = new Map<string, BatchJob>();
  private seq = 0;
  private lineSeq = 0;
  private ticker: NodeJS.Timeout | null = null;
  private failures: Queued[] = [];
  private expiries: BatchExpiry[] = [];

  constructor(
    private readonly host: BatchHost,
    private readonly files: FileStore,
    private readonly tag: string,
  ) {}

  /** `POST /v1/batches`: checks the request, reads the file, and starts the batch in `validating`. */
  create(body: unknown): { batch: BatchObject } | { error: LlmError } {
    if (!isRecord(body)) return { error: badRequest('We could not parse the JSON body of your request.', null) };
    const inputFileId = body['input_file_id'];
    if (typeof inputFileId !== 'string' || inputFileId === '') return { error: missing('input_file_id') };
    const endpoint = body['endpoint'];
    if (typeof endpoint !== 'string' || endpoint === '') return { error: missing('endpoint') };
    if (endpoint !== BATCH_ENDPOINT) {
      return { error: badRequest(`The fake runs batches for ${BATCH_ENDPOINT} only, not '${endpoint}'.`, 'endpoint', 'unsupported_value') };
    }
    const completionWindow = body['completion_window'];
    if (completionWindow !== '24h') {
      return { error: badRequest(`Invalid value for 'completion_window': '${String(completionWindow)}'. Supported values are: '24h'.`, 'completion_window', 'invalid_value') };
    }
    const metadata = readMetadata(body['metadata']);
    if ('error' in metadata) return { error: metadata.error };
    const file = this.files.get(inputFileId);
    if (!file) return { error: badRequest(`No such File object: ${inputFileId}`, 'input_file_id') };
    if (file.object.purpose !== 'batch') {
      return { error: badRequest(`File ${inputFileId} has purpose '${file.object.purpose}'; a batch input file must have purpose 'batch'.`, 'input_file_id') };
    }

    const options = this.host.batchOptions();
    const parsed = parseBatchInput(file.content, endpoint, {
      maxRequests: options.batchMaxRequests ?? DEFAULT_BATCH_MAX_REQUESTS,
      maxBytes: options.batchMaxBytes ?? DEFAULT_BATCH_MAX_BYTES,
    });
    const lines = 'lines' in parsed ? parsed.lines : [];
    const model = 'lines' in parsed ? parsed.model : null;
    const enqueuedTokens = lines.reduce((sum, l) => sum + this.host.enqueuedTokens(l.body), 0);
    let validationErrors = 'errors' in parsed ? parsed.errors : null;
    if (validationErrors === null) validationErrors = this.queueCheck(model ?? '', enqueuedTokens);

    const seq = ++this.seq;
    const now = Date.now();
    const record: LedgerBatch = {
      id: `batch_fake${this.tag}${seq}`,
      inputFileId,
      metadata: metadata.value,
      model,
      lineCount: countRequests(file.content),
      customIds: lines.map((l) => l.customId),
      status: 'validating',
      createdAt: now,
      endedAt: null,
      enqueuedTokens: validationErrors === null ? enqueuedTokens : 0,
      completed: 0,
      failed: 0,
      billedMicros: 0,
      errorCodes: [],
      outputFileId: null,
      errorFileId: null,
    };
    const job: BatchJob = {
      record,
      seq,
      endpoint,
      completionWindow,
      delayMs: Math.max(0, options.batchDelayMs ?? DEFAULT_BATCH_DELAY_MS),
      lines,
      next: 0,
      validationErrors,
      expireAfterLines: validationErrors === null ? (this.expiries.shift()?.afterLines ?? null) : null,
      holdsQueue: validationErrors === null,
      times: {},
      cancelRequestedAt: null,
      output: [],
      errors: [],
      usage: { input: 0, output: 0 },
    };
    this.jobs.set(record.id, job);
    this.host.ledger.recordBatch(record);
    this.step(job, now);
    this.startTicker();
    return { batch: this.view(job) };
  }

  retrieve(id: string): { batch: BatchObject } | { error: LlmError } {
    const job = this.jobs.get(id);
    if (!job) return { error: noSuchBatch(id) };
    this.step(job, Date.now());
    return { batch: this.view(job) };
  }

  /** `GET /v1/batches`: newest first, `limit` (1..100, default 20) and cursor `after`. */
  list(query: URLSearchParams): unknown {
    this.advance();
    const newestFirst = [...this.jobs.values()].sort((a, b) => b.seq - a.seq).map((j) => this.view(j));
    return cursorPage(newestFirst, query, 100);
  }

  /**
   * `POST /v1/batches/:id/cancel`: stops running lines at once (those not run are never
   * billed) and goes `cancelling`, then `cancelled` a tenth of the batch delay later with an
   * output file of the lines that ran. An ended batch cannot be cancelled: 409, the fake's choice.
   */
  cancel(id: string): { batch: BatchObject } | { error: LlmError } {
    const job = this.jobs.get(id);
    if (!job) return { error: noSuchBatch(id) };
    const now = Date.now();
    this.step(job, now);
    const status = job.record.status;
    if (status === 'completed' || status === 'failed' || status === 'expired' || status === 'cancelled') {
      return { error: { status: 409, message: `Cannot cancel a batch with status '${status}'.`, type: 'invalid_request_error', code: null, param: null } };
    }
    if (status !== 'cancelling') {
      job.record.status = 'cancelling';
      job.times.cancelling_at = seconds(now);
      job.cancelRequestedAt = now;
      this.step(job, now);
    }
    return { batch: this.view(job) };
  }

  /** Expires a batch now (test injection); false when it is cancelling, ended or does not exist. */
  expire(id: string): boolean {
    const job = this.jobs.get(id);
    if (!job) return false;
    this.step(job, Date.now());
    if (!isRunning(job.record.status) || job.record.status === 'cancelling') return false;
    this.expireJob(job, Date.now());
    return true;
  }

  injectLineFailures(failure: BatchLineFailure): void {
    const customIds = failure.customIds && failure.customIds.length > 0 ? new Set(failure.customIds) : null;
    this.failures.push({ failure, customIds, remaining: customIds ? customIds.size : Math.max(1, failure.count ?? 1) });
  }

  injectExpiry(expiry: BatchExpiry = {}): void {
    this.expiries.push(expiry);
  }

  /** Injected line failures and expiries not used yet. */
  get pendingInjections(): { lineFailures: number; expiries: number } {
    return { lineFailures: this.failures.reduce((n, q) => n + q.remaining, 0), expiries: this.expiries.length };
  }

  /** Forgets every batch and injection and stops the timer (their files go with the file store). */
  reset(): void {
    this.stopTicker();
    this.jobs.clear();
    this.failures = [];
    this.expiries = [];
  }

  stop(): void {
    this.stopTicker();
  }

  /** Moves every unfinished batch on to `now`. */
  advance(now = Date.now()): void {
    for (const job of this.jobs.values()) this.step(job, now);
    if (![...this.jobs.values()].some((j) => isRunning(j.record.status))) this.stopTicker();
  }

  // ---- lifecycle ------------------------------------------------------------

  private step(job: BatchJob, now: number): void {
    const { record, delayMs } = job;
    const elapsed = now - record.createdAt;
    if (record.status === 'validating') {
      if (elapsed < delayMs * 0.1) return;
      if (job.validationErrors !== null) return this.failJob(job, now);
      record.status = 'in_progress';
      job.times.in_progress_at = seconds(now);
    }
    if (record.status === 'in_progress') {
      this.runDueLines(job, elapsed, now);
      if (record.status !== 'in_progress' || job.next < job.lines.length || elapsed < delayMs * 0.8) return;
      record.status = 'finalizing';
      job.times.finalizing_at = seconds(now);
    }
    if (record.status === 'finalizing' && elapsed >= delayMs) return this.endJob(job, 'completed', now);
    if (record.status === 'cancelling' && now - (job.cancelRequestedAt ?? now) >= delayMs * 0.1) this.endJob(job, 'cancelled', now);
  }

  /** Line i is due at 1/10 + (i+1)/n * 7/10 of the delay. */
  private runDueLines(job: BatchJob, elapsed: number, now: number): void {
    const n = job.lines.length;
    while (job.next < n) {
      const due = job.delayMs * (0.1 + (0.7 * (job.next + 1)) / n);
      if (elapsed < due) return;
      if (job.expireAfterLines !== null && job.next >= job.expireAfterLines) return this.expireJob(job, now);
      const line = job.lines[job.next];
      if (line) this.runLine(job, line, now);
      job.next++;
    }
  }

  private runLine(job: BatchJob, line: BatchInputLine, now: number): void {
    const { record } = job;
    const entry = this.host.ledger.open({ provider: 'openai', at: now, method: 'POST', path: job.endpoint });
    entry.authorized = true;
    entry.tier = 'batch';
    entry.batchId = record.id;
    entry.customId = line.customId;
    const answer = this.host.answerLine(line.body, entry, this.takeFailure(line.customId));
    entry.status = answer.status;
    entry.billed = answer.status === 200;
    if (!entry.billed) entry.costMicros = 0;
    entry.completedAt = now;
    const response = { status_code: answer.status, request_id: `req_fake_${entry.id}`, body: answer.body };
    const out = JSON.stringify({ id: `batch_req_fake${this.tag}${++this.lineSeq}`, custom_id: line.customId, response, error: null });
    if (entry.billed) {
      job.output.push(out);
      record.completed++;
      record.billedMicros += entry.costMicros;
      job.usage.input += entry.promptTokens ?? 0;
      job.usage.output += entry.completionTokens ?? 0;
    } else {
      job.errors.push(out);
      record.failed++;
    }
  }

  private takeFailure(customId: string): LlmError | null {
    const index = this.failures.findIndex((q) => q.customIds === null || q.customIds.has(customId));
    const queued = this.failures[index];
    if (!queued) return null;
    queued.customIds?.delete(customId);
    queued.remaining--;
    if (queued.remaining <= 0) this.failures.splice(index, 1);
    const status = queued.failure.status ?? 500;
    return {
      status,
      message: queued.failure.message ?? (status >= 500 ? 'The server had an error while processing your request. Sorry about that!' : 'Bad request (injected fault).'),
      type: status >= 500 ? 'server_error' : 'invalid_request_error',
      code: queued.failure.code ?? null,
      param: null,
    };
  }

  private expireJob(job: BatchJob, now: number): void {
    for (const line of job.lines.slice(job.next)) {
      job.errors.push(
        JSON.stringify({
          id: `batch_req_fake${this.tag}${++this.lineSeq}`,
          custom_id: line.customId,
          response: null,
          error: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' },
        }),
      );
      job.record.failed++;
    }
    job.next = job.lines.length;
    this.endJob(job, 'expired', now);
  }

  private failJob(job: BatchJob, now: number): void {
    job.record.errorCodes = (job.validationErrors ?? []).map((e) => e.code);
    job.record.status = 'failed';
    job.times.failed_at = seconds(now);
    this.release(job, now);
  }

  /** Writes the output and error files (each only when it has lines) and ends the batch. */
  private endJob(job: BatchJob, status: 'completed' | 'expired' | 'cancelled', now: number): void {
    const { record } = job;
    if (job.output.length > 0) record.outputFileId = this.writeFile(`${record.id}_output.jsonl`, job.output);
    if (job.errors.length > 0) record.errorFileId = this.writeFile(`${record.id}_error.jsonl`, job.errors);
    record.status = status;
    job.times[status === 'completed' ? 'completed_at' : status === 'expired' ? 'expired_at' : 'cancelled_at'] = seconds(now);
    this.release(job, now);
  }

  private writeFile(name: string, lines: readonly string[]): string {
    return this.files.put(name, 'batch_output', Buffer.from(`${lines.join('\n')}\n`), null).object.id;
  }

  private release(job: BatchJob, now: number): void {
    job.holdsQueue = false;
    job.record.endedAt = now;
  }

  /** `token_limit_exceeded` when the model's unfinished batches plus this one would pass the limit. */
  private queueCheck(model: string, tokens: number): BatchError[] | null {
    const limit = this.host.batchOptions().batchEnqueuedTokenLimit ?? DEFAULT_BATCH_ENQUEUED_TOKEN_LIMIT;
    let held = 0;
    for (const j of this.jobs.values()) if (j.holdsQueue && (j.record.model ?? '') === model) held += j.record.enqueuedTokens;
    if (held + tokens <= limit) return null;
    return [
      {
        code: 'token_limit_exceeded',
        message: `Enqueued token limit reached for ${model} in organization ${this.host.organization()}. Limit: ${limit.toLocaleString('en-US')} enqueued tokens. Please try again once some in_progress batches have been completed.`,
        line: null,
        param: null,
      },
    ];
  }

  // ---- wire shapes ----------------------------------------------------------

  /** OpenAI's `Batch` object. */
  private view(job: BatchJob): BatchObject {
    const { record, times } = job;
    const created = seconds(record.createdAt);
    const validated = record.status !== 'validating' && record.status !== 'failed';
    return {
      id: record.id,
      object: 'batch',
      endpoint: job.endpoint,
      model: record.model,
      errors: record.status === 'failed' ? { object: 'list', data: job.validationErrors ?? [] } : null,
      input_file_id: record.inputFileId,
      completion_window: job.completionWindow,
      status: record.status,
      output_file_id: record.outputFileId,
      error_file_id: record.errorFileId,
      created_at: created,
      in_progress_at: times.in_progress_at ?? null,
      expires_at: created + COMPLETION_WINDOW_S,
      finalizing_at: times.finalizing_at ?? null,
      completed_at: times.completed_at ?? null,
      failed_at: times.failed_at ?? null,
      expired_at: times.expired_at ?? null,
      cancelling_at: times.cancelling_at ?? null,
      cancelled_at: times.cancelled_at ?? null,
      request_counts: { total: validated ? job.lines.length : 0, completed: record.completed, failed: record.failed },
      usage: {
        input_tokens: job.usage.input,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: job.usage.output,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: job.usage.input + job.usage.output,
      },
      metadata: record.metadata,
    };
  }

  private startTicker(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => this.advance(), TICK_MS);
    this.ticker.unref();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }
}

function isRunning(status: BatchStatus): boolean {
  return status === 'validating' || status === 'in_progress' || status === 'finalizing' || status === 'cancelling';
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

function countRequests(content: Buffer): number {
  let n = 0;
  for (const line of content.toString('utf8').split('\n')) if (line.trim() !== '') n++;
  return n;
}

/** OpenAI's metadata rules: at most 16 string pairs, keys up to 64 characters, values up to 512. */
function readMetadata(value: unknown): { value: Record<string, string> | null } | { error: LlmError } {
  if (value === undefined || value === null) return { value: null };
  const invalid = (why: string) => ({ error: badRequest(`Invalid 'metadata': ${why}.`, 'metadata', 'invalid_value') });
  if (!isRecord(value)) return invalid('expected an object');
  const entries = Object.entries(value);
  if (entries.length > 16) return invalid('at most 16 keys');
  const out: Record<string, string> = {};
  for (const [key, v] of entries) {
    if (key.length > 64) return invalid(`key '${key.slice(0, 20)}...' is longer than 64 characters`);
    if (typeof v !== 'string') return invalid(`value of '${key}' is not a string`);
    if (v.length > 512) return invalid(`value of '${key}' is longer than 512 characters`);
    out[key] = v;
  }
  return { value: out };
}

function noSuchBatch(id: string): LlmError {
  return { status: 404, message: `No batch found with id '${id}'.`, type: 'invalid_request_error', code: null, param: null };
}

function missing(param: string): LlmError {
  return badRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
}

function badRequest(message: string, param: string | null, code: string | null = null): LlmError {
  return { status: 400, message, type: 'invalid_request_error', code, param };
}
