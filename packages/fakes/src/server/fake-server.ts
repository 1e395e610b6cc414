import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { drawRandomFault, FaultQueue, isStatusFault, type Fault, type FaultRates, type StatusFault } from './faults.js';
import { isRecord, MAX_BODY_BYTES, readJsonBody, sendBody } from './http-io.js';
import { Ledger, type LedgerEntry, type ProviderName } from './ledger.js';
import { Prng } from './prng.js';
import { retryAfterHeaders, type RetryAfterMode } from './retry-headers.js';
import { SliceBucket } from './slice-bucket.js';
import { SlidingWindow } from './sliding-window.js';
import { Timers } from './timers.js';

/** Options every fake provider understands. */
export interface FakeServerOptions {
  /** Listen port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Seed of the PRNG behind latency and random faults (default 1). */
  seed?: number;
  /** Uniform latency added before every answer (default none). */
  latencyMs?: { min: number; max: number };
  /** Length of the fake's own sliding rate-limit window (default 60_000). */
  windowMs?: number;
  /** Requests admitted per window. */
  rpm?: number;
  /**
   * Slice of the window over which every limit is also enforced (default 1000 ms; 0 turns
   * slices off). Real providers quantize their per-minute limits ("60,000 requests/minute
   * may be enforced as 1,000 requests/second"), so besides the sliding window each bucket
   * paces requests and tokens as a GCRA at `limit / windowMs` (see SliceBucket): a request
   * is refused while the schedule of what was admitted before runs more than
   * `sliceMs * sliceTolerance` ahead of now. A full minute's worth sent in one second draws 429s.
   */
  sliceMs?: number;
  /** Burst the slices tolerate, in slices (default 1); 0.5 makes a stricter provider. */
  sliceTolerance?: number;
  /**
   * Requests refused with a 429 by the fake's limiter count against the windows (requests,
   * and their tokens) like admitted ones (default true): OpenAI documents that unsuccessful
   * requests count against the per-minute limits, so resending at once only digs deeper.
   * Requests that fail by a fault (5xx, timeout, reset) were admitted and always count.
   */
  countRejected?: boolean;
  /** Required bearer key; unset accepts any non-empty key. */
  apiKey?: string;
  /** Retry-After forms on 429s (default 'both'). */
  retryAfterHeaders?: RetryAfterMode;
  /** Random faults per admitted request. */
  faultRates?: FaultRates;
  /** How long a `timeout` fault without `ms` hangs before closing (default 30_000). */
  timeoutFaultMs?: number;
}

/** An HTTP answer: `body` is sent as JSON unless `raw` is given. */
export interface Reply {
  status: number;
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** Error code for the ledger (`rate_limit_exceeded`, ...). */
  errorCode?: string;
  /** Without the provider's `answerHeaders` (OpenAI's x-ratelimit-*): endpoints outside those limits (files, batches). */
  bare?: boolean;
}

/** What a provider parsed out of a request it serves. */
export interface ProviderCall {
  subject: string | null;
  brand: string | null;
}

export type RouteResult<C> = { call: C } | { reply: Reply };

/** Which limiter windows a call is counted in. */
export interface Admission {
  /** Separate windows per bucket (Sheets reads and writes have separate quotas). */
  bucket: string;
  rpm: number;
  tpm?: number;
  /** Tokens the call charges to the TPM window. */
  tokens?: number;
}

export interface RateLimitDecision {
  type: 'requests' | 'tokens';
  limit: number;
  used: number;
  requested: number;
  retryAfterMs: number;
}

export interface RequestContext {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: unknown;
  bodyInvalid: boolean;
  /** The body's bytes, for routes that are not JSON (multipart file uploads). */
  rawBody: Buffer;
  entry: LedgerEntry;
}

export interface ServeOptions {
  /** Set by a `bad-json-content` fault. */
  badContent?: 'not-json' | 'wrong-schema';
}

export interface WindowState {
  requestsUsed: number;
  tokensUsed: number;
  requestsResetMs: number;
  tokensResetMs: number;
}

interface BucketWindows {
  requests: SlidingWindow;
  tokens: SlidingWindow;
  requestSlices: SliceBucket;
  tokenSlices: SliceBucket;
}

/** One limit a request must pass: its sliding window and its per-slice pacing. */
interface LimitCheck {
  type: 'requests' | 'tokens';
  limit: number;
  weight: number;
  window: SlidingWindow;
  slices: SliceBucket;
}

const DEFAULT_WINDOW_MS = 60_000;
const DEFAULT_SLICE_MS = 1000;

/**
 * A real loopback HTTP server with the behaviour every fake provider shares:
 * bearer auth, its own sliding-window rate limits, latency, scripted and random
 * faults, a ledger of every request and the `/__fake/*` control endpoints.
 * Subclasses only parse and answer their provider's routes.
 */
export abstract class FakeServer<O extends FakeServerOptions, C extends ProviderCall> {
  readonly ledger = new Ledger();
  protected options: O;
  private prng: Prng;
  private readonly faults: FaultQueue;
  private readonly windows = new Map<string, BucketWindows>();
  private readonly timers = new Timers();
  private readonly server: Server;
  private boundPort = 0;

  protected constructor(
    readonly provider: ProviderName,
    options: O,
  ) {
    this.options = options;
    this.prng = new Prng(options.seed ?? 1);
    this.faults = new FaultQueue((subject, brand) => this.matchesBrand(subject, brand));
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // Last resort: a bug in a fake must surface as a 500, not a hung test.
        sendBody(res, 500, JSON.stringify({ error: { message: String(err) } }), {});
      });
    });
  }

  // ---- provider hooks -------------------------------------------------------

  /** 401 reply when the request's credentials are refused, else null. */
  protected abstract authorize(ctx: RequestContext): Reply | null;
  /** Parses a provider request; `{ reply }` answers it directly (404 unknown route, 400 bad body). */
  protected abstract route(ctx: RequestContext): RouteResult<C> | Promise<RouteResult<C>>;
  protected abstract admission(call: C): Admission;
  protected abstract serve(call: C, ctx: RequestContext, opts: ServeOptions): Reply;
  protected abstract statusFaultReply(fault: StatusFault, call: C, retryAfterMs: number | null): Reply;
  protected abstract rateLimitReply(decision: RateLimitDecision, call: C): Reply;

  /** How a fault's `brand` filter matches this provider's subject. */
  protected matchesBrand(subject: string, brand: string): boolean {
    return subject === brand;
  }

  /** Headers on every provider answer (OpenAI's x-ratelimit-*). */
  protected answerHeaders(_call: C | null, _now: number): Record<string, string> {
    return {};
  }

  /** Largest request body read for a route (larger ones read as invalid); file uploads ask for more. */
  protected maxRequestBytes(_method: string, _path: string): number {
    return MAX_BODY_BYTES;
  }

  /** Provider-specific `/__fake/*` routes (e.g. seeding sheets). */
  protected control(_method: string, _path: string, _body: unknown): Reply | null {
    return null;
  }

  /** JSON-safe view of the options for `POST /__fake/config` answers. */
  protected publicOptions(): O {
    return { ...this.options };
  }

  // ---- public API -----------------------------------------------------------

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
  }

  get port(): number {
    return this.boundPort;
  }

  /** `http://127.0.0.1:PORT`; the `/__fake/*` control endpoints live here. */
  get origin(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  /** The base URL to hand to the provider's SDK. */
  abstract get url(): string;

  configure(partial: Partial<O>): void {
    this.options = { ...this.options, ...partial };
    if (partial.seed !== undefined) this.prng = new Prng(partial.seed);
    if (partial.windowMs !== undefined) {
      for (const w of this.windows.values()) {
        w.requests.windowMs = partial.windowMs;
        w.tokens.windowMs = partial.windowMs;
      }
    }
  }

  injectFaults(faults: readonly Fault[]): void {
    this.faults.push(faults);
  }

  get pendingFaults(): number {
    return this.faults.size;
  }

  /** Clears ledger, limiter windows and queued faults. */
  reset(): void {
    this.ledger.reset();
    this.windows.clear();
    this.faults.clear();
  }

  async close(): Promise<void> {
    this.timers.cancelAll();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  protected windowState(bucket: string, now: number): WindowState {
    const w = this.bucket(bucket);
    return {
      requestsUsed: w.requests.used(now),
      tokensUsed: w.tokens.used(now),
      requestsResetMs: w.requests.resetMs(now),
      tokensResetMs: w.tokens.resetMs(now),
    };
  }

  // ---- request pipeline -----------------------------------------------------

  private bucket(name: string): BucketWindows {
    let w = this.windows.get(name);
    if (!w) {
      const windowMs = this.windowMs();
      w = {
        requests: new SlidingWindow(windowMs),
        tokens: new SlidingWindow(windowMs),
        requestSlices: new SliceBucket(),
        tokenSlices: new SliceBucket(),
      };
      this.windows.set(name, w);
    }
    return w;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/__fake/')) {
      const body = await readJsonBody(req);
      const reply = this.handleControl(method, url.pathname, body.json);
      sendBody(res, reply.status, JSON.stringify(reply.body ?? {}), {});
      return;
    }

    const entry = this.ledger.open({ provider: this.provider, at, method, path: url.pathname, ...(req.socket.remotePort ? { clientPort: req.socket.remotePort } : {}) });
    // Drawn at arrival so the PRNG sequence follows request order, whatever the outcome.
    const latency = this.drawLatency();
    const parsed = await readJsonBody(req, this.maxRequestBytes(method, url.pathname));
    const ctx: RequestContext = { method, url, headers: req.headers, body: parsed.json, bodyInvalid: parsed.invalid, rawBody: parsed.raw, entry };

    const denied = this.authorize(ctx);
    if (denied) return this.answer(res, entry, denied, null, latency);
    entry.authorized = true;

    const routed = await this.route(ctx);
    if ('reply' in routed) return this.answer(res, entry, routed.reply, null, latency);
    const { call } = routed;
    entry.subject = call.subject;
    entry.brand = call.brand;

    const admission = this.admission(call);
    entry.rateLimitTokens = admission.tokens ?? 0;
    const decision = this.admit(admission, at);
    if (decision) {
      entry.counted = this.countsRejected();
      entry.rateLimitType = decision.type;
      this.announceCooldown(entry, decision.retryAfterMs, at);
      const reply = this.rateLimitReply(decision, call);
      return this.answer(res, entry, withRetryHeaders(reply, this.retryMode(), decision.retryAfterMs, at), call, latency);
    }
    entry.admitted = true;
    entry.counted = true;

    const fault = this.faults.take(call.subject) ?? drawRandomFault(this.options.faultRates, this.prng);
    if (fault) return this.applyFault(fault, call, ctx, res, latency, req);

    return this.answer(res, entry, this.safeServe(call, ctx, {}), call, latency);
  }

  /**
   * Admits a request when every limit of its bucket lets it through, in the minute window
   * and in the slice; the refusal names the first limit that refused it and the real wait
   * until all of them would admit the same request again (after counting this one, when
   * refused requests count).
   */
  private admit(admission: Admission, at: number): RateLimitDecision | null {
    const checks = this.limitChecks(admission);
    const refused = checks.find((c) => this.waitOf(c, at) > 0);
    if (!refused) {
      this.charge(checks, at);
      return null;
    }
    const used = refused.window.used(at);
    if (this.countsRejected()) this.charge(checks, at);
    const retryAfterMs = Math.max(1, ...checks.map((c) => this.waitOf(c, at)));
    return { type: refused.type, limit: refused.limit, used, requested: refused.weight, retryAfterMs };
  }

  private limitChecks(admission: Admission): LimitCheck[] {
    const w = this.bucket(admission.bucket);
    const checks: LimitCheck[] = [{ type: 'requests', limit: admission.rpm, weight: 1, window: w.requests, slices: w.requestSlices }];
    const tokens = admission.tokens ?? 0;
    if (admission.tpm !== undefined && tokens > 0) {
      checks.push({ type: 'tokens', limit: admission.tpm, weight: tokens, window: w.tokens, slices: w.tokenSlices });
    }
    return checks;
  }

  private waitOf(check: LimitCheck, at: number): number {
    const windowWait = check.window.waitMs(at, check.weight, check.limit);
    const sliceMs = this.sliceMs();
    if (sliceMs <= 0) return windowWait;
    const toleranceMs = sliceMs * (this.options.sliceTolerance ?? 1);
    return Math.max(windowWait, check.slices.waitMs(at, check.limit, this.windowMs(), toleranceMs));
  }

  private charge(checks: readonly LimitCheck[], at: number): void {
    const slicesOn = this.sliceMs() > 0;
    for (const c of checks) {
      c.window.add(at, c.weight);
      if (slicesOn) c.slices.charge(at, c.weight, c.limit, this.windowMs());
    }
  }

  private windowMs(): number {
    return this.options.windowMs ?? DEFAULT_WINDOW_MS;
  }

  private sliceMs(): number {
    return this.options.sliceMs ?? DEFAULT_SLICE_MS;
  }

  private countsRejected(): boolean {
    return this.options.countRejected ?? true;
  }

  private async applyFault(
    fault: Fault,
    call: C,
    ctx: RequestContext,
    res: ServerResponse,
    latency: number,
    req: IncomingMessage,
  ): Promise<void> {
    const { entry } = ctx;
    if (isStatusFault(fault)) {
      entry.fault = 'status';
      const retryAfterMs = fault.retryAfterMs ?? (fault.status === 429 && isRateLimitCode(fault.code) ? 1000 : null);
      if (retryAfterMs !== null) this.announceCooldown(entry, retryAfterMs, Date.now());
      const reply = this.statusFaultReply(fault, call, retryAfterMs);
      const sent = retryAfterMs === null ? reply : withRetryHeaders(reply, this.retryMode(), retryAfterMs, Date.now());
      return this.answer(res, entry, sent, call, latency);
    }
    entry.fault = fault.kind;
    switch (fault.kind) {
      case 'timeout': {
        const clientGone = new Promise<void>((resolve) => res.once('close', () => resolve()));
        await Promise.race([this.timers.sleep(fault.ms ?? this.options.timeoutFaultMs ?? 30_000), clientGone]);
        req.socket.destroy();
        entry.completedAt = Date.now();
        return;
      }
      case 'reset':
        await this.timers.sleep(latency);
        req.socket.destroy();
        entry.completedAt = Date.now();
        return;
      case 'malformed':
        // Not billed: the client cannot read any usage from a broken body.
        return this.answer(res, entry, { status: 200, raw: '{"id":"chatcmpl-broken","choices":[{"mess' }, call, latency);
      case 'bad-json-content':
        return this.answer(res, entry, this.safeServe(call, ctx, { badContent: fault.variant ?? 'not-json' }), call, latency);
    }
  }

  private safeServe(call: C, ctx: RequestContext, opts: ServeOptions): Reply {
    try {
      return this.serve(call, ctx, opts);
    } catch (err) {
      return this.statusFaultReply({ status: 500, message: `fake ${this.provider} failed: ${String(err)}` }, call, null);
    }
  }

  private announceCooldown(entry: LedgerEntry, retryAfterMs: number, decidedAt: number): void {
    entry.retryAfterMs = retryAfterMs;
    entry.cooldownUntil = decidedAt + retryAfterMs;
  }

  private async answer(
    res: ServerResponse,
    entry: LedgerEntry,
    reply: Reply,
    call: C | null,
    latency: number,
  ): Promise<void> {
    await this.timers.sleep(latency);
    // A broken (raw) body carries no usage the client could book, so the fake does not bill it.
    entry.billed = entry.admitted && reply.status >= 200 && reply.status < 300 && reply.raw === undefined;
    if (!entry.billed) entry.costMicros = 0;
    entry.status = reply.status;
    entry.errorCode = reply.errorCode ?? entry.errorCode;
    entry.completedAt = Date.now();
    const providerHeaders = reply.bare ? {} : this.answerHeaders(call, entry.completedAt);
    const headers = { 'x-request-id': `req_fake_${entry.id}`, ...providerHeaders, ...reply.headers };
    sendBody(res, reply.status, reply.raw ?? JSON.stringify(reply.body ?? {}), headers);
  }

  private drawLatency(): number {
    const l = this.options.latencyMs;
    if (!l || l.max <= 0) return 0;
    return this.prng.int(Math.max(0, l.min), l.max);
  }

  private retryMode(): RetryAfterMode {
    return this.options.retryAfterHeaders ?? 'both';
  }

  private handleControl(method: string, path: string, body: unknown): Reply {
    if (method === 'GET' && path === '/__fake/ledger') {
      return { status: 200, body: { provider: this.provider, entries: this.ledger.entries(), summary: this.ledger.summary() } };
    }
    if (method === 'POST' && path === '/__fake/reset') {
      this.reset();
      return { status: 200, body: { ok: true } };
    }
    if (method === 'POST' && path === '/__fake/faults') {
      const faults = Array.isArray(body) ? body : isRecord(body) && Array.isArray(body['faults']) ? body['faults'] : null;
      if (!faults) return { status: 400, body: { error: 'expected an array of faults or {faults:[...]}' } };
      this.injectFaults(faults as Fault[]);
      return { status: 200, body: { pendingFaults: this.pendingFaults } };
    }
    if (method === 'POST' && path === '/__fake/config') {
      if (!isRecord(body)) return { status: 400, body: { error: 'expected a JSON object' } };
      const { faults, clearFaults, ...options } = body;
      if (clearFaults === true) this.faults.clear();
      this.configure(options as Partial<O>);
      if (Array.isArray(faults)) this.injectFaults(faults as Fault[]);
      return { status: 200, body: { options: this.publicOptions(), pendingFaults: this.pendingFaults } };
    }
    return this.control(method, path, body) ?? { status: 404, body: { error: `no control route ${method} ${path}` } };
  }
}

/** 429s without a code, or with a rate-limit code, announce a wait; quota/billing 429s do not. */
function isRateLimitCode(code: string | undefined): boolean {
  return code === undefined || code === 'rate_limit_exceeded';
}

function withRetryHeaders(reply: Reply, mode: RetryAfterMode, retryAfterMs: number, now: number): Reply {
  return { ...reply, headers: { ...reply.headers, ...retryAfterHeaders(mode, retryAfterMs, now) } };
}
