import type { Redis } from 'ioredis';
import { defineScripts } from './scripts.js';
import { within } from './within.js';

const SCRIPTS = [
  { name: 'brandqClaimLease', file: new URL('../lua/claim-lease.lua', import.meta.url), numberOfKeys: 1 },
  { name: 'brandqReleaseLease', file: new URL('../lua/release-lease.lua', import.meta.url), numberOfKeys: 1 },
] as const;

interface LeaseScripts {
  brandqClaimLease(lease: string, token: string, leaseMs: number): Promise<0 | 1 | 2>;
  brandqReleaseLease(lease: string, token: string): Promise<number>;
}

export interface FleetLeaseOptions {
  /** Lease length; the holder renews every third of it, a dead holder is replaced after it. */
  leaseMs: number;
  /** This process just took the lease (not a renewal). */
  onTaken?: () => void;
  /** This process held the lease and another one holds it now. */
  onLost?: () => void;
  onRenewalError?: (err: unknown) => void;
}

/** How long a graceful stop waits for Redis to take the lease back before it lets it expire. */
const RELEASE_WAIT_MS = 1000;

/**
 * A lease that makes one process of the fleet the only one doing a job (writing sheet rows,
 * submitting batches). Taken with `claim()`, renewed in the background while held, given
 * back on a graceful stop; a dead holder's lease expires and the next claim takes it. The
 * holder counts its lease from before each request and a little short of it, so it stops
 * acting before Redis could give the lease to someone else.
 */
export class FleetLease {
  private readonly redis: Redis & LeaseScripts;
  private validUntil = 0;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewal: Promise<unknown> | undefined;

  constructor(
    redis: Redis,
    private readonly key: string,
    /** The holder's identity (`<pid>:<uuid>`): an operator (or a test) sees which process holds it. */
    readonly token: string,
    private readonly options: FleetLeaseOptions,
  ) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as Redis & LeaseScripts;
  }

  /** Whether this process holds the lease now. */
  holds(): boolean {
    return this.validUntil > Date.now();
  }

  /** Takes (or renews) the lease; true when this process holds it afterwards. */
  async claim(): Promise<boolean> {
    const sentAt = Date.now();
    const result = await this.redis.brandqClaimLease(this.key, this.token, this.options.leaseMs);
    if (result === 0) {
      const lost = this.validUntil > 0;
      this.validUntil = 0;
      this.stopRenewing();
      if (lost) this.options.onLost?.();
      return false;
    }
    this.validUntil = sentAt + this.options.leaseMs * 0.9;
    if (result === 2) {
      this.startRenewing();
      this.options.onTaken?.();
    }
    return true;
  }

  /** Gives the lease back (if held), so another process takes over at once; it expires by itself if Redis does not answer. */
  async release(): Promise<void> {
    this.stopRenewing();
    // A renewal still in flight could re-take the lease right after we give it back.
    await within(Promise.resolve(this.renewal), RELEASE_WAIT_MS);
    if (this.validUntil === 0) return;
    this.validUntil = 0;
    await within(this.redis.brandqReleaseLease(this.key, this.token), RELEASE_WAIT_MS);
  }

  private startRenewing(): void {
    if (this.renewTimer) return;
    this.renewTimer = setInterval(() => {
      if (this.renewal) return;
      this.renewal = this.claim()
        // Not renewed: holds() turns false by itself when the lease may have lapsed.
        .catch((err: unknown) => this.options.onRenewalError?.(err))
        .finally(() => {
          this.renewal = undefined;
        });
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));
    this.renewTimer.unref();
  }

  private stopRenewing(): void {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }
}
