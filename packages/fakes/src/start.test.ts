import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import OpenAI, { InternalServerError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { RemoteFake } from './remote.js';
import { startFakes, type Fakes } from './start.js';

let fakes: Fakes | undefined;

afterEach(async () => {
  await fakes?.close();
  fakes = undefined;
});

describe('startFakes and the /__fake control endpoints', () => {
  it('starts all three and exposes env, ledger, config, faults and reset over HTTP', async () => {
    fakes = await startFakes();
    expect(fakes.env.OPENAI_BASE_URL).toBe(`http://127.0.0.1:${fakes.openai.port}/v1`);
    expect(fakes.env.TAVILY_BASE_URL).toBe(`http://127.0.0.1:${fakes.tavily.port}`);
    expect(fakes.env.GOOGLE_SHEETS_ROOT_URL).toBe(`http://127.0.0.1:${fakes.sheets.port}/`);

    const remote = new RemoteFake(fakes.openai.url);
    // sliceMs 0: at 5 rpm the default 1 s slices would pace these calls 12 s apart.
    await remote.configure({ rpm: 5, sliceMs: 0, faults: [{ status: 500, brand: 'Acme' }] });
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: fakes.env.OPENAI_BASE_URL, maxRetries: 0 });
    const ask = (brand: string) =>
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `Brand: ${brand}` }] });
    await ask('Other');
    await expect(ask('Acme')).rejects.toBeInstanceOf(InternalServerError);

    const ledger = await remote.ledger();
    expect(ledger.entries().map((e) => [e.brand, e.status])).toEqual([
      ['Other', 200],
      ['Acme', 500],
    ]);
    expect(ledger.billedMicros()).toBe(fakes.openai.ledger.billedMicros());
    const { headers } = await ask('Other').withResponse().then((r) => r.response);
    expect(headers.get('x-ratelimit-limit-requests')).toBe('5');

    await remote.reset();
    expect(fakes.openai.ledger.length).toBe(0);

    const sheets = new RemoteFake(fakes.sheets.origin);
    await sheets.injectFaults([{ status: 503 }]);
    expect(fakes.sheets.pendingFaults).toBe(1);
    const seeded = await fetch(`${fakes.sheets.origin}/__fake/sheets`, {
      method: 'POST',
      body: JSON.stringify({ spreadsheetId: 's', sheetTitle: 'T', rows: [['a', 'b']] }),
    });
    expect(seeded.status).toBe(200);
    expect(fakes.sheets.getValues('s', 'T')).toEqual([['a', 'b']]);
  });
});

describe('cli', () => {
  it('prints the env lines, takes the batch delay from FAKES_OPENAI_BATCH_DELAY_MS, and exits cleanly on SIGTERM', async () => {
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@brandq/source', cli], {
      env: { ...process.env, FAKES_OPENAI_PORT: '0', FAKES_OPENAI_BATCH_DELAY_MS: '250' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for await (const line of createInterface({ input: child.stdout })) {
      lines.push(line);
      if (line.startsWith('GOOGLE_SHEETS_ACCESS_TOKEN=')) break;
    }
    const env = Object.fromEntries(lines.map((l) => l.split(/=(.*)/s).slice(0, 2)));
    expect(env['OPENAI_BASE_URL']).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(env['TAVILY_BASE_URL']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(env['GOOGLE_SHEETS_ROOT_URL']).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(`${new URL(env['TAVILY_BASE_URL'] ?? '').origin}/__fake/ledger`);
    expect(res.status).toBe(200);
    // An empty config change answers the options in force.
    const config = await fetch(`${new URL(env['OPENAI_BASE_URL'] ?? '').origin}/__fake/config`, { method: 'POST', body: '{}' });
    expect(((await config.json()) as { options: { batchDelayMs?: number } }).options.batchDelayMs).toBe(250);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
