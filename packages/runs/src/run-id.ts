import { randomBytes } from 'node:crypto';

/** Sortable, readable run ids such as `run-20261122-064512-a1b2c3`. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${randomBytes(3).toString('hex')}`;
}
