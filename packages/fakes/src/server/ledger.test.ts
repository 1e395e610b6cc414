import { describe, expect, it } from 'vitest';
import { formatResetDuration, formatTryAgainIn } from './durations.js';
import { Ledger } from './ledger.js';
import { SlidingWindow } from './sliding-window.js';

function ledgerWith(rows: Array<{ at: number; tokens?: number; admitted?: boolean; status?: number }>): Ledger {
  const ledger = new Ledger();
  for (const r of rows) {
    const e = ledger.open({ provider: 'openai', at: r.at, method: 'POST', path: '/v1/chat/completions' });
    e.admitted = r.admitted ?? true;
    e.rateLimitTokens = r.tokens ?? 0;
    e.status = r.status ?? 200;
    e.completedAt = r.at;
  }
  return ledger;
}

describe('Ledger window maxima', () => {
  it('uses half-open windows like the limiter', () => {
    const ledger = ledgerWith([{ at: 0 }, { at: 500 }, { at: 999 }, { at: 1000 }, { at: 1001, admitted: false }]);
    // Admitted only: [0, 1000) holds 3, the one at 1000 no longer sees 0.
    expect(ledger.maxRequestsInAnyWindow(1000)).toBe(3);
    // With the rejected one: 500, 999, 1000, 1001 share a window.
    expect(ledger.maxRequestsInAnyWindow(1000, () => true)).toBe(4);
    expect(ledger.maxRequestsInAnyWindow(1001)).toBe(4);
  });

  it('sums tokens charged at admission', () => {
    const ledger = ledgerWith([{ at: 0, tokens: 100 }, { at: 10, tokens: 50 }, { at: 2000, tokens: 120 }]);
    expect(ledger.maxTokensInAnyWindow(1000)).toBe(150);
    expect(ledger.maxTokensInAnyWindow(5000)).toBe(270);
  });

  it('finds requests inside announced cooldowns', () => {
    const ledger = ledgerWith([{ at: 0, status: 429 }, { at: 100 }, { at: 2000 }]);
    const first = ledger.entries()[0];
    if (!first) throw new Error('no entry');
    first.retryAfterMs = 1000;
    first.cooldownUntil = 1000;
    expect(ledger.cooldownViolations().map((e) => e.at)).toEqual([100]);
    expect(ledger.cooldownViolations(200)).toEqual([]);
  });

  it('round-trips through JSON', () => {
    const ledger = ledgerWith([{ at: 1 }, { at: 2 }]);
    const copy = Ledger.fromEntries(JSON.parse(JSON.stringify(ledger)) as ReturnType<Ledger['entries']>);
    expect(copy.entries()).toEqual(ledger.entries());
    expect(copy.open({ provider: 'openai', at: 3, method: 'GET', path: '/' }).id).toBe(3);
  });
});

describe('SlidingWindow', () => {
  it('computes the wait until a request or tokens fit', () => {
    const w = new SlidingWindow(1000);
    w.add(0, 10);
    w.add(400, 10);
    expect(w.used(500)).toBe(20);
    expect(w.waitMs(500, 5, 20)).toBe(500);
    expect(w.waitMs(500, 15, 20)).toBe(900);
    expect(w.waitMs(500, 50, 20)).toBe(1000);
    expect(w.used(1000)).toBe(10);
    expect(w.resetMs(1000)).toBe(400);
  });
});

describe('durations', () => {
  it('prints OpenAI-style durations', () => {
    expect(formatResetDuration(12)).toBe('12ms');
    expect(formatResetDuration(1000)).toBe('1s');
    expect(formatResetDuration(17_600)).toBe('17.6s');
    expect(formatResetDuration(360_000)).toBe('6m0s');
    expect(formatTryAgainIn(1234)).toBe('1.234s');
    expect(formatTryAgainIn(20)).toBe('20ms');
  });
});

describe('Ledger paid calls per brand', () => {
  it('counts billed entries per brand, and admitted ones (failed after admission included) apart', () => {
    const ledger = new Ledger();
    const add = (brand: string | null, fields: { admitted: boolean; billed: boolean; costMicros: number }) =>
      Object.assign(ledger.open({ provider: 'openai', at: 0, method: 'POST', path: '/v1/chat/completions' }), { brand, ...fields });
    add('Acme', { admitted: true, billed: true, costMicros: 40 });
    add('Acme', { admitted: true, billed: false, costMicros: 0 }); // a 500 after admission
    add('Free', { admitted: true, billed: true, costMicros: 0 }); // a model priced 0 is still a paid call
    add('Globex', { admitted: false, billed: false, costMicros: 0 }); // refused by the limiter
    add(null, { admitted: true, billed: true, costMicros: 7 });

    expect(ledger.paidCallsByBrand()).toEqual(new Map([['Acme', 1], ['Free', 1]]));
    expect(ledger.admittedCallsByBrand()).toEqual(new Map([['Acme', 2], ['Free', 1]]));
    expect(ledger.billedMicros()).toBe(47);
    expect(ledger.summary()).toMatchObject({
      paidCalls: 3,
      paidCallsByBrand: { Acme: 1, Free: 1 },
      admittedCallsByBrand: { Acme: 2, Free: 1 },
      billedMicros: 47,
    });
  });
});
