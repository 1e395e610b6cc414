import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeProviderLimits {
  /** Requests allowed in any sliding window of `windowMs`. */
  rpm: number;
  windowMs: number;
  /** Tokens allowed in any sliding window (charged at arrival with the call's usage). */
  tpm: number;
  maxConcurrency: number;
  /** How long each call takes. */
  latencyMs: number;
}

export interface LedgerEntry {
  at: number;
  tokens: number;
  caller: string;
  status: number;
  reason?: string;
}

/**
 * A strict provider for tests: enforces the limits on exact sliding windows of its own
 * clock, the way a real provider stamps requests when they arrive, answers 429 when any
 * is exceeded, and keeps a ledger of every arrival (accepted or not).
 */
export class FakeProvider {
  readonly ledger: LedgerEntry[] = [];
  private inFlight = 0;
  private server: Server | undefined;

  constructor(private readonly limits: FakeProviderLimits) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/call`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  get rejected(): LedgerEntry[] {
    return this.ledger.filter((e) => e.status !== 200);
  }

  /** Most arrivals (requests and tokens, accepted or not) in any window of `windowMs`. */
  worstWindow(): { requests: number; tokens: number } {
    const all = [...this.ledger].sort((a, b) => a.at - b.at);
    let requests = 0;
    let tokens = 0;
    let j = 0;
    let sum = 0;
    for (let i = 0; i < all.length; i++) {
      sum += all[i]!.tokens;
      while (all[j]!.at <= all[i]!.at - this.limits.windowMs) sum -= all[j++]!.tokens;
      requests = Math.max(requests, i - j + 1);
      tokens = Math.max(tokens, sum);
    }
    return { requests, tokens };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const now = performance.now();
    const reserved = Number(req.headers['x-reserve-tokens'] ?? 0);
    // Real usage is at most what the caller reserved (prompt + max output tokens).
    const used = Math.max(1, Math.floor(reserved * (0.4 + 0.6 * Math.random())));
    const caller = String(req.headers['x-caller'] ?? '?');
    const live = this.ledger.filter((e) => e.status === 200 && e.at > now - this.limits.windowMs);
    const liveTokens = live.reduce((s, e) => s + e.tokens, 0);
    let reason: string | undefined;
    if (this.inFlight >= this.limits.maxConcurrency) reason = 'concurrency';
    else if (live.length >= this.limits.rpm) reason = 'requests';
    else if (liveTokens + used > this.limits.tpm) reason = 'tokens';
    if (reason) {
      this.ledger.push({ at: now, tokens: used, caller, status: 429, reason });
      res.writeHead(429, { 'retry-after-ms': String(this.limits.windowMs), 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: reason }));
      return;
    }
    this.ledger.push({ at: now, tokens: used, caller, status: 200 });
    this.inFlight += 1;
    const oldest = live[0]?.at ?? now;
    const reset = `${Math.max(1, Math.ceil(oldest + this.limits.windowMs - now))}ms`;
    const headers = {
      'content-type': 'application/json',
      'x-ratelimit-remaining-requests': String(this.limits.rpm - live.length - 1),
      'x-ratelimit-reset-requests': reset,
      'x-ratelimit-remaining-tokens': String(this.limits.tpm - liveTokens - used),
      'x-ratelimit-reset-tokens': reset,
    };
    setTimeout(() => {
      this.inFlight -= 1;
      res.writeHead(200, headers);
      res.end(JSON.stringify({ usedTokens: used }));
    }, this.limits.latencyMs);
  }
}
