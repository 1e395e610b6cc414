import { within } from '@brandq/redis';
import type { RenewReply } from './fill-scripts.js';

/** Why a filler stopped holding its fill lock before it finished. */
export type FillLockLoss =
  /** Renewal found another filler's token on the lock (ours had lapsed and a waiter claimed it). */
  | 'taken'
  /** Renewal found no lock at all (it lapsed, nobody claimed it yet). */
  | 'gone'
  /** No renewal got through for the lock's whole remaining life (Redis unreachable or stalled). */
  | 'renewal_failed';

/** The one renewal call: 1 renewed, 0 the lock is gone, -1 another filler holds it. */
export type RenewFillLock = () => Promise<RenewReply>;

/**
 * A filler's right to compute one cache key while its paid call runs, kept alive by
 * renewals and reported lost as soon as it is known to be.
 *
 * Renewed every third of the lock's length, so two thirds of it remain when a renewal is
 * due; a failed renewal is retried every fifteenth of it (each try bounded by what remains
 * of the lock), so a Redis blip of well over half the lock's length costs nothing. Waiters
 * claim only a lock that lapsed, and re-check the value in the same atomic step, so a filler
 * that finished just before never gets paid for twice.
 *
 * What can still pay twice: a filler stalled (blocked event loop, a paused process, Redis
 * unreachable from it but not from others) for longer than two thirds of the lock's length
 * (6.7 s at the default 10 s) while its provider call runs. A waiter then claims the lapsed
 * lock and pays again. That needs a stall of seconds during one specific call, so it is
 * rare; the late filler then learns it lost the lock (`onLost`) and its store is fenced by
 * its token, so it never overwrites the newer filler's claim.
 */
export class FillLock {
  private readonly renewEveryMs: number;
  private readonly retryMs: number;
  /** Local time until which the lock is known ours, counted from when its last renewal was sent. */
  private confirmedUntil: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `claimedAt`: local time the claim was sent (the lock's life is counted from there). */
  constructor(
    private readonly renew: RenewFillLock,
    private readonly lockMs: number,
    claimedAt: number,
    private readonly onLost: (reason: FillLockLoss) => void,
  ) {
    this.renewEveryMs = Math.max(10, Math.floor(lockMs / 3));
    this.retryMs = Math.max(5, Math.floor(lockMs / 15));
    this.confirmedUntil = claimedAt + lockMs;
  }

  start(): void {
    this.schedule(this.renewEveryMs);
  }

  /** Stops renewing (the fill is over); the lock is then released, stored over, or left to lapse. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.renewOnce(), delayMs);
    this.timer.unref();
  }

  private async renewOnce(): Promise<void> {
    const sentAt = Date.now();
    let result: number;
    try {
      result = await within(this.renew(), this.confirmedUntil - sentAt);
    } catch {
      if (this.stopped) return;
      if (Date.now() + this.retryMs >= this.confirmedUntil) this.lose('renewal_failed');
      else this.schedule(this.retryMs);
      return;
    }
    if (this.stopped) return;
    if (result === 1) {
      this.confirmedUntil = sentAt + this.lockMs;
      this.schedule(this.renewEveryMs);
    } else {
      this.lose(result === -1 ? 'taken' : 'gone');
    }
  }

  private lose(reason: FillLockLoss): void {
    this.stop();
    this.onLost(reason);
  }
}
