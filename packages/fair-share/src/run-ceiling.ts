import type { Redis } from 'ioredis';
import { defineScripts, runCeilingKey } from '@brandq/redis';

const SCRIPTS = [{ name: 'brandqAdmitRunCall', file: new URL('../lua/admit-run-call.lua', import.meta.url), numberOfKeys: 1 }] as const;

interface CeilingScripts {
  brandqAdmitRunCall(key: string, maxRpm: number): Promise<number>;
}

/**
 * A run's own ceiling (`--max-rpm`), per provider, shared by the whole fleet: its calls go
 * evenly spaced, on Redis time. It never waits itself: a call told to wait gives its worker
 * slot back (the job is delayed), so a capped run cannot hold the slots other runs need.
 */
export class RunCeiling {
  private readonly redis: Redis & CeilingScripts;

  constructor(redis: Redis) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as Redis & CeilingScripts;
  }

  /** 0 when the run's next call at `provider` may start now (and it is counted), else how long until it may. */
  async admit(runId: string, provider: string, maxRpm: number): Promise<number> {
    return Number(await this.redis.brandqAdmitRunCall(runCeilingKey(runId, provider), maxRpm));
  }
}
