import type { Fault } from './server/faults.js';
import { Ledger, type LedgerEntry, type LedgerSummary } from './server/ledger.js';

/**
 * Drives a fake running in another process (e.g. `pnpm fakes`) through its
 * `/__fake/*` endpoints. `origin` is `http://127.0.0.1:PORT` (a base URL with a
 * path such as `/v1` is accepted; only its origin is used).
 */
export class RemoteFake {
  private readonly origin: string;

  constructor(url: string) {
    this.origin = new URL(url).origin;
  }

  async ledger(): Promise<Ledger> {
    const body = (await this.call('GET', '/__fake/ledger')) as { entries: LedgerEntry[] };
    return Ledger.fromEntries(body.entries);
  }

  /** The fake's own summary: billed micro-dollars, paid calls per brand, ... */
  async summary(): Promise<LedgerSummary> {
    const body = (await this.call('GET', '/__fake/ledger')) as { summary: LedgerSummary };
    return body.summary;
  }

  /** JSON-safe options (limits, latency, fault rates, ...); `clearFaults` empties the fault queue first. */
  async configure(options: Record<string, unknown> & { faults?: Fault[]; clearFaults?: boolean }): Promise<void> {
    await this.call('POST', '/__fake/config', options);
  }

  /** Faults travel as JSON: use `brand` filters, `match` functions cannot cross processes. */
  async injectFaults(faults: readonly Fault[]): Promise<void> {
    await this.call('POST', '/__fake/faults', faults);
  }

  async reset(): Promise<void> {
    await this.call('POST', '/__fake/reset');
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.origin}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const json: unknown = await res.json();
    if (!res.ok) throw new Error(`fake control ${method} ${path} failed: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  }
}
