import type { Redis } from 'ioredis';
import { batchKeys, defineScripts, runKeys } from '@brandq/redis';
import type { BatchOutcome, ParkedRequest } from './batch-request.js';

const SCRIPTS = [{ name: 'brandqParkRequest', file: new URL('../lua/park-request.lua', import.meta.url), numberOfKeys: 2 }] as const;

interface DeskScripts {
  brandqParkRequest(known: string, pending: string, id: string, request: string): Promise<number>;
}

/**
 * Where a brand's batch-tier step leaves its request and finds its answer. A request is
 * parked once over its whole life (see park-request.lua). The run step is marked as having
 * parked requests after the request is stored, so a crash in between leaves the mark to be
 * set again when the job looks again.
 */
export class BatchDesk {
  private readonly redis: Redis & DeskScripts;

  constructor(
    redis: Redis,
    private readonly now: () => number = Date.now,
  ) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as Redis & DeskScripts;
  }

  async park(runId: string, request: Omit<ParkedRequest, 'parkedAt'>): Promise<void> {
    const parked: ParkedRequest = { ...request, parkedAt: this.now() };
    const keys = runKeys(runId);
    await this.redis.brandqParkRequest(keys.batchKnown, keys.batchPending, request.customId, JSON.stringify(parked));
    await this.redis.zadd(batchKeys.groups, 'NX', parked.parkedAt, groupMember(runId, request.step));
  }

  async outcomeOf(runId: string, customId: string): Promise<BatchOutcome | undefined> {
    const raw = await this.redis.hget(runKeys(runId).batchOutcomes, customId);
    return raw === null ? undefined : (JSON.parse(raw) as BatchOutcome);
  }

  /** Forgets a request that failed for good, once its brand has taken the failure: a retry of the brand parks it afresh. */
  async forget(runId: string, customId: string): Promise<void> {
    const keys = runKeys(runId);
    await this.redis.hdel(keys.batchOutcomes, customId);
    await this.redis.hdel(keys.batchKnown, customId);
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
