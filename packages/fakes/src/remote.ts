import type { BatchExpiry, BatchLineFailure } from './openai/batches.js';
import type { Fault } from './server/faults.js';
import { Ledger, type LedgerBatch, type LedgerEntry, type LedgerSummary } from './server/ledger.js';

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
    const body = (await this.call('GET', '/__fake/ledger')) as { entries: LedgerEntry[]; summary: { batches?: LedgerBatch[] } };
    return Ledger.fromEntries(body.entries, body.summary.batches ?? []);
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

  /** OpenAI fake: the next `count` flex requests answer 429 Resource Unavailable. */
  async injectFlexShortage(count = 1): Promise<void> {
    await this.call('POST', '/__fake/flex-shortage', { count });
  }

  /** OpenAI fake: batch lines (given custom_ids, or the next `count`) fail into the error file. */
  async injectBatchLineFailures(failure: BatchLineFailure): Promise<void> {
    await this.call('POST', '/__fake/batch-failures', failure);
  }

  /** OpenAI fake: the next batch created expires after `afterLines` lines. */
  async injectBatchExpiry(expiry: BatchExpiry = {}): Promise<void> {
    await this.call('POST', '/__fake/batch-expiry', expiry);
  }

  /** OpenAI fake: expires a running batch now; false when it is cancelling, ended or unknown. */
  async expireBatch(batchId: string): Promise<boolean> {
    const body = (await this.call('POST', `/__fake/batches/${encodeURIComponent(batchId)}/expire`)) as { expired: boolean };
    return body.expired;
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
