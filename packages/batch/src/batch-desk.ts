import type { Redis } from 'ioredis';
import { batchKeys, runKeys } from '@brandq/redis';
import type { BatchOutcome, ParkedRequest } from './batch-request.js';

/**
 * Where a brand's batch-tier step leaves its request and finds its answer. Parking is
 * idempotent per request id: a job that comes back before its batch is done parks nothing
 * new. The run step is marked as having parked requests after the request is stored, so a
 * crash in between leaves the request to be marked again when its job looks again.
 */
export class BatchDesk {
  constructor(
    private readonly redis: Redis,
    private readonly now: () => number = Date.now,
  ) {}

  async park(runId: string, request: Omit<ParkedRequest, 'parkedAt'>): Promise<void> {
    const parked: ParkedRequest = { ...request, parkedAt: this.now() };
    await this.redis.hsetnx(runKeys(runId).batchPending, request.customId, JSON.stringify(parked));
    await this.redis.zadd(batchKeys.groups, 'NX', parked.parkedAt, groupMember(runId, request.step));
  }

  async outcomeOf(runId: string, customId: string): Promise<BatchOutcome | undefined> {
    const raw = await this.redis.hget(runKeys(runId).batchOutcomes, customId);
    return raw === null ? undefined : (JSON.parse(raw) as BatchOutcome);
  }
}

/** A run step with parked requests, as the coordinator's groups set names it. */
export function groupMember(runId: string, step: string): string {
  return `${runId}|${step}`;
}

export function parseGroupMember(member: string): { runId: string; step: string } {
  const cut = member.indexOf('|');
  return { runId: member.slice(0, cut), step: member.slice(cut + 1) };
}
