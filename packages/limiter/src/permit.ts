import type { Permit, SettleOptions, SettleOutcome } from './types.js';

/** What a permit needs from its limiter; kept narrow so the permit stays a plain value. */
export interface PermitHost {
  settle(permit: LimiterPermit, usedTokens: number | undefined, holdMs: number): Promise<SettleOutcome>;
  release(permit: LimiterPermit): Promise<SettleOutcome>;
  renew(permit: LimiterPermit): Promise<boolean>;
  forget(permit: LimiterPermit): void;
}

export interface PermitInit {
  id: string;
  provider: string;
  tokens: number;
  waitedMs: number;
  admittedAtMs: number;
  /** 0 when the provider has no concurrency rule (no lease to renew). */
  leaseMs: number;
}

/**
 * One admitted call. While it is held, a timer renews its lease every leaseMs/3 so a slow
 * but live call keeps its slot; the timer is unref'd (never keeps a process alive) and
 * stops on settle/release. A crashed holder stops renewing, and its lease expires.
 */
export class LimiterPermit implements Permit {
  readonly id: string;
  readonly provider: string;
  readonly tokens: number;
  readonly waitedMs: number;
  readonly admittedAtMs: number;
  private readonly host: PermitHost;
  private readonly heldSince = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private done: Promise<SettleOutcome> | undefined;

  constructor(host: PermitHost, init: PermitInit) {
    this.host = host;
    this.id = init.id;
    this.provider = init.provider;
    this.tokens = init.tokens;
    this.waitedMs = init.waitedMs;
    this.admittedAtMs = init.admittedAtMs;
    if (init.leaseMs > 0) {
      this.timer = setInterval(() => void this.renew().catch(() => undefined), Math.max(10, Math.floor(init.leaseMs / 3)));
      this.timer.unref();
    }
  }

  settle(options: SettleOptions = {}): Promise<SettleOutcome> {
    this.done ??= this.finish(() => this.host.settle(this, options.usedTokens, performance.now() - this.heldSince));
    return this.done;
  }

  release(): Promise<SettleOutcome> {
    this.done ??= this.finish(() => this.host.release(this));
    return this.done;
  }

  async renew(): Promise<boolean> {
    if (this.done) return false;
    return this.host.renew(this);
  }

  /** Stops renewing without telling the store (limiter shutdown: the lease then expires). */
  stopRenewing(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async finish(run: () => Promise<SettleOutcome>): Promise<SettleOutcome> {
    this.stopRenewing();
    try {
      return await run();
    } finally {
      this.host.forget(this);
    }
  }
}
