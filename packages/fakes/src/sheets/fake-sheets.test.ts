import { google, type sheets_v4 } from 'googleapis';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeSheets } from '../start.js';
import type { FakeSheetsOptions, FakeSheetsServer } from './fake-sheets.js';

let fake: FakeSheetsServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeSheetsOptions = {}): Promise<{ server: FakeSheetsServer; api: sheets_v4.Sheets }> {
  fake = await startFakeSheets(opts);
  const auth = new google.auth.OAuth2();
  auth.setCredentials({ access_token: 'test' });
  return { server: fake, api: google.sheets({ version: 'v4', auth, rootUrl: fake.url, retry: false }) };
}

interface HttpError {
  status: number;
  response: { data: unknown };
}

async function httpError(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p;
  } catch (err) {
    const e = err as Partial<HttpError>;
    if (typeof e.status === 'number' && e.response) return e as HttpError;
    throw err;
  }
  throw new Error('expected the call to fail');
}

const ID = 'sheet-123';

describe('fake Google Sheets through googleapis', () => {
  it('reads ragged rows from quoted sheet names, open-ended ranges and whole columns', async () => {
    const { server, api } = await start();
    server.setSheet(ID, 'Brands', [['brand', 'website']]);
    server.setSheet(ID, "My Sheet's", [
      ['brand', 'website', 'category'],
      ['Acme', '', ''],
      ['', '', ''],
      ['Globex', 'https://globex.example.com'],
      ['', '', ''],
    ]);

    const res = await api.spreadsheets.values.get({ spreadsheetId: ID, range: "'My Sheet''s'!A2:C" });
    expect(res.data).toEqual({
      range: "'My Sheet''s'!A2:C1000",
      majorDimension: 'ROWS',
      values: [['Acme'], [], ['Globex', 'https://globex.example.com']],
    });

    const column = await api.spreadsheets.values.get({ spreadsheetId: ID, range: "'My Sheet''s'!B:B" });
    expect(column.data.values).toEqual([['website'], [], [], ['https://globex.example.com']]);

    // No sheet name: the first tab.
    const first = await api.spreadsheets.values.get({ spreadsheetId: ID, range: 'A1:B1' });
    expect(first.data).toMatchObject({ range: 'Brands!A1:B1', values: [['brand', 'website']] });

    const empty = await api.spreadsheets.values.get({ spreadsheetId: ID, range: 'Brands!D5:E9' });
    expect(empty.data).toEqual({ range: 'Brands!D5:E9', majorDimension: 'ROWS' });

    expect(server.ledger.entries().map((e) => [e.subject, e.status, e.spreadsheetId])).toEqual([
      ["'My Sheet''s'!A2:C", 200, ID],
      ["'My Sheet''s'!B:B", 200, ID],
      ['A1:B1', 200, ID],
      ['Brands!D5:E9', 200, ID],
    ]);
  });

  it('writes RAW batchUpdates into the grid and reports the update counts', async () => {
    const { server, api } = await start();
    server.setSheet(ID, 'Out Put', [['brand', 'website', 'category'], ['Acme'], ['Globex']]);

    const res = await api.spreadsheets.values.batchUpdate({
      spreadsheetId: ID,
      requestBody: {
        valueInputOption: 'RAW',
        data: [
          { range: "'Out Put'!B2:C2", values: [['https://acme.example.com', '=HYPERLINK("x")']] },
          { range: "'Out Put'!B3", values: [['https://globex.example.com']] },
        ],
      },
    });
    expect(res.data).toEqual({
      spreadsheetId: ID,
      totalUpdatedRows: 2,
      totalUpdatedColumns: 3,
      totalUpdatedCells: 3,
      totalUpdatedSheets: 1,
      responses: [
        { spreadsheetId: ID, updatedRange: "'Out Put'!B2:C2", updatedRows: 1, updatedColumns: 2, updatedCells: 2 },
        { spreadsheetId: ID, updatedRange: "'Out Put'!B3", updatedRows: 1, updatedColumns: 1, updatedCells: 1 },
      ],
    });
    expect(server.getValues(ID, 'Out Put')).toEqual([
      ['brand', 'website', 'category'],
      ['Acme', 'https://acme.example.com', '=HYPERLINK("x")'],
      ['Globex', 'https://globex.example.com'],
    ]);
    const [entry] = server.ledger.entries();
    expect(entry).toMatchObject({ status: 200, valueInputOption: 'RAW', formulaWritten: false });
    expect(entry?.writes?.map((w) => w.range)).toEqual(["'Out Put'!B2:C2", "'Out Put'!B3"]);
    expect(server.formulaCells(ID, 'Out Put')).toEqual([]);
  });

  it('flags formulas written with USER_ENTERED', async () => {
    const { server, api } = await start();
    server.setSheet(ID, 'Sheet1', [['a']]);
    await api.spreadsheets.values.batchUpdate({
      spreadsheetId: ID,
      requestBody: { valueInputOption: 'USER_ENTERED', data: [{ range: 'Sheet1!B1', values: [['=1+1']] }] },
    });
    expect(server.ledger.entries()[0]).toMatchObject({ valueInputOption: 'USER_ENTERED', formulaWritten: true });
    expect(server.formulaCells(ID, 'Sheet1')).toEqual(['B1']);
  });

  it('answers 404 for unknown spreadsheets, 400 for bad ranges and writes outside their range', async () => {
    const { server, api } = await start();
    server.setSheet(ID, 'Sheet1', []);

    const missing = await httpError(api.spreadsheets.values.get({ spreadsheetId: 'nope', range: 'Sheet1!A1' }));
    expect(missing.status).toBe(404);
    expect(missing.response.data).toEqual({ error: { code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND' } });

    const badRange = await httpError(api.spreadsheets.values.get({ spreadsheetId: ID, range: 'Nope!A1' }));
    expect(badRange.status).toBe(400);
    expect(badRange.response.data).toEqual({
      error: { code: 400, message: 'Unable to parse range: Nope!A1', status: 'INVALID_ARGUMENT' },
    });

    const tooWide = await httpError(
      api.spreadsheets.values.batchUpdate({
        spreadsheetId: ID,
        requestBody: {
          valueInputOption: 'RAW',
          data: [
            { range: 'Sheet1!A1', values: [['ok']] },
            { range: 'Sheet1!A2:B2', values: [['a', 'b', 'c']] },
          ],
        },
      }),
    );
    expect(tooWide.status).toBe(400);
    // The batch is all-or-nothing.
    expect(server.getValues(ID, 'Sheet1')).toEqual([]);
    expect(server.ledger.entries().map((e) => e.status)).toEqual([404, 400, 400]);
  });

  it('supports values.update, values.append and spreadsheet metadata', async () => {
    const { server, api } = await start();
    server.setSheet(ID, 'Sheet1', [['brand'], ['Acme']]);
    await api.spreadsheets.values.update({
      spreadsheetId: ID,
      range: 'Sheet1!B1:B2',
      valueInputOption: 'RAW',
      requestBody: { values: [['website'], ['https://acme.example.com']] },
    });
    const appended = await api.spreadsheets.values.append({
      spreadsheetId: ID,
      range: 'Sheet1!A:B',
      valueInputOption: 'RAW',
      insertDataOption: 'INSERT_ROWS',
      requestBody: { values: [['Globex', 'https://globex.example.com']] },
    });
    expect(appended.data.updates?.updatedRange).toBe('Sheet1!A3:B3');
    expect(server.getValues(ID, 'Sheet1')).toEqual([
      ['brand', 'website'],
      ['Acme', 'https://acme.example.com'],
      ['Globex', 'https://globex.example.com'],
    ]);
    const meta = await api.spreadsheets.get({ spreadsheetId: ID });
    expect(meta.data.sheets?.map((s) => s.properties?.title)).toEqual(['Sheet1']);
  });

  it('requires a bearer token and rate-limits writes with RESOURCE_EXHAUSTED', async () => {
    const { server, api } = await start({ writeRpm: 1, windowMs: 10_000 });
    server.setSheet(ID, 'Sheet1', []);
    const anonymous = await fetch(`${server.url}v4/spreadsheets/${ID}/values/A1`);
    expect(anonymous.status).toBe(401);

    const write = () =>
      api.spreadsheets.values.batchUpdate({
        spreadsheetId: ID,
        requestBody: { valueInputOption: 'RAW', data: [{ range: 'A1', values: [['x']] }] },
      });
    await write();
    const limited = await httpError(write());
    expect(limited.status).toBe(429);
    expect(limited.response.data).toMatchObject({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } });
    // Reads have their own quota.
    await api.spreadsheets.values.get({ spreadsheetId: ID, range: 'A1' });
    expect(server.ledger.entries().map((e) => e.status)).toEqual([401, 200, 429, 200]);
  });
});
