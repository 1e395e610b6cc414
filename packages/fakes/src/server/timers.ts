interface Pending {
  timer: NodeJS.Timeout;
  resolve: () => void;
}

/**
 * Sleeps that close() can cut short: latency and hanging faults must not keep
 * a closed fake (and the test process) alive.
 */
export class Timers {
  private pending = new Set<Pending>();

  sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const item: Pending = {
        timer: setTimeout(() => {
          this.pending.delete(item);
          resolve();
        }, ms),
        resolve,
      };
      this.pending.add(item);
    });
  }

  cancelAll(): void {
    for (const item of this.pending) {
      clearTimeout(item.timer);
      item.resolve();
    }
    this.pending.clear();
  }
}
