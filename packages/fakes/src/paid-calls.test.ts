import { tavily } from '@tavily/core';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { RemoteFake } from './remote.js';
import { startFakes, type Fakes } from './start.js';

let fakes: Fakes | undefined;

afterEach(async () => {
  await fakes?.close();
  fakes = undefined;
});

describe('paid calls per brand, from the fakes\' own ledgers', () => {
  it('counts what each provider billed per brand, and what it admitted, in process and over HTTP', async () => {
    // A free model: paid calls are counted by what was billed, not by a non-zero price.
    fakes = await startFakes({ openai: { prices: { 'free-model': { inputPerMillion: 0, outputPerMillion: 0 } } } });
    const llm = new OpenAI({ apiKey: 'sk-x', baseURL: fakes.openai.url, maxRetries: 0 });
    const ask = (brand: string, model = 'gpt-4o-mini') =>
      llm.chat.completions.create({ model, messages: [{ role: 'user', content: `Brand: ${brand}` }] }).then(() => 'ok', () => 'failed');
    fakes.openai.injectFaults([{ status: 500, brand: 'Globex' }, { kind: 'malformed', brand: 'Initech' }, { kind: 'reset', brand: 'Hooli' }]);
    for (const brand of ['Acme', 'Globex', 'Globex', 'Initech', 'Initech', 'Hooli']) await ask(brand);
    await ask('Acme', 'free-model');

    const search = tavily({ apiKey: 'tvly-x', apiBaseURL: fakes.tavily.url });
    fakes.tavily.injectFaults([{ status: 500, brand: 'Globex brand' }]);
    // brandq's query shape is attributed to its brand without `knownBrands`.
    for (const brand of ['Acme Rockets', 'Globex', 'Globex']) {
      await search.search(`${brand} brand company official website`).catch(() => undefined);
    }

    expect(fakes.openai.ledger.paidCallsByBrand()).toEqual(new Map([['Acme', 2], ['Globex', 1], ['Initech', 1]]));
    expect(fakes.openai.ledger.admittedCallsByBrand()).toEqual(new Map([['Acme', 2], ['Globex', 2], ['Initech', 2], ['Hooli', 1]]));
    expect(fakes.openai.ledger.filter((e) => e.model === 'free-model')).toMatchObject([{ billed: true, costMicros: 0 }]);
    expect(fakes.tavily.ledger.paidCallsByBrand()).toEqual(new Map([['Acme Rockets', 1], ['Globex', 1]]));

    // Multi-process tests read the same figures from `GET /__fake/ledger`.
    const summary = await new RemoteFake(fakes.openai.url).summary();
    expect(summary).toMatchObject({
      paidCalls: 4,
      paidCallsByBrand: { Acme: 2, Globex: 1, Initech: 1 },
      admittedCallsByBrand: { Acme: 2, Globex: 2, Initech: 2, Hooli: 1 },
      billedMicros: fakes.openai.ledger.billedMicros(),
    });
    expect((await new RemoteFake(fakes.tavily.url).ledger()).paidCallsByBrand()).toEqual(fakes.tavily.ledger.paidCallsByBrand());
  });
});
