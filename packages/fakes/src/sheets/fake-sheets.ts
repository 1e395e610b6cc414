import {
  FakeServer,
  type Admission,
  type FakeServerOptions,
  type ProviderCall,
  type RateLimitDecision,
  type Reply,
  type RequestContext,
  type RouteResult,
} from '../server/fake-server.js';
import type { StatusFault } from '../server/faults.js';
import { isRecord } from '../server/http-io.js';
import type { SheetWrite } from '../server/ledger.js';
import { A1ParseError, parseA1, type A1Range } from './a1.js';
import { GridLimitError, WriteOutOfRangeError, type CellInput, type SheetGrid, type WriteResult } from './sheet-grid.js';
import { SpreadsheetStore } from './spreadsheet-store.js';

export interface FakeSheetsOptions extends FakeServerOptions {
  /** Read requests per window (default `rpm`, else 300). */
  readRpm?: number;
  /** Write requests per window (default `rpm`, else 300). */
  writeRpm?: number;
}

type SheetsOp =
  | { op: 'metadata' }
  | { op: 'get'; range: string }
  | { op: 'batchGet'; ranges: string[] }
  | { op: 'batchUpdate'; body: Record<string, unknown> }
  | { op: 'update'; range: string; valueInputOption: string | null; body: Record<string, unknown> }
  | { op: 'append'; range: string; valueInputOption: string | null; body: Record<string, unknown> };

interface SheetsCall extends ProviderCall {
  spreadsheetId: string;
  request: SheetsOp;
}

/** One validated write, ready to apply. */
interface PlannedWrite {
  requested: string;
  grid: SheetGrid;
  range: A1Range;
  values: CellInput[][];
}

const DEFAULT_RPM = 300;

const GOOGLE_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** Thrown inside serve() to answer with a Google error. */
class SheetsError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function googleError(status: number, message: string): Reply {
  const code = GOOGLE_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION');
  return { status, body: { error: { code: status, message, status: code } }, errorCode: code };
}

function isWrite(op: SheetsOp['op']): boolean {
  return op === 'batchUpdate' || op === 'update' || op === 'append';
}

function readValues(value: unknown, where: string): CellInput[][] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new SheetsError(400, `Invalid value at '${where}': expected a list of rows.`);
  return value.map((row: unknown, i) => {
    if (!Array.isArray(row)) throw new SheetsError(400, `Invalid value at '${where}[${i}]': expected a list of values.`);
    return row.map((cell: unknown, j): CellInput => {
      if (cell === null || typeof cell === 'string' || typeof cell === 'number' || typeof cell === 'boolean') return cell;
      throw new SheetsError(400, `Invalid value at '${where}[${i}][${j}]': ${JSON.stringify(cell)}`);
    });
  });
}

function checkValueInputOption(value: unknown): 'RAW' | 'USER_ENTERED' {
  if (value === 'RAW' || value === 'USER_ENTERED') return value;
  throw new SheetsError(400, `Invalid valueInputOption: ${typeof value === 'string' ? value : 'INPUT_VALUE_OPTION_UNSPECIFIED'}`);
}

/** Google Sheets v4 values API, served at the root like sheets.googleapis.com. */
export class FakeSheetsServer extends FakeServer<FakeSheetsOptions, SheetsCall> {
  private readonly store = new SpreadsheetStore();

  constructor(options: FakeSheetsOptions = {}) {
    super('sheets', options);
  }

  /** Seeds (or replaces) a tab. Rows are stored as given; use '' for empty cells. */
  setSheet(spreadsheetId: string, sheetTitle: string, rows: readonly (readonly string[])[]): void {
    this.store.setSheet(spreadsheetId, sheetTitle, rows);
  }

  /** The tab's values as values.get of the whole sheet returns them; undefined if it does not exist. */
  getValues(spreadsheetId: string, sheetTitle: string): string[][] | undefined {
    return this.store.sheet(spreadsheetId, sheetTitle)?.allValues();
  }

  /** A1 references of cells Sheets would have evaluated as formulas. */
  formulaCells(spreadsheetId: string, sheetTitle: string): string[] {
    return this.store.sheet(spreadsheetId, sheetTitle)?.formulaCells() ?? [];
  }

  /** Drops every spreadsheet (reset() keeps them: they are test fixtures, not traffic). */
  clearSheets(): void {
    this.store.clear();
  }

  /** rootUrl for googleapis (trailing slash, requests go to `/v4/...`). */
  get url(): string {
    return `${this.origin}/`;
  }

  protected authorize(ctx: RequestContext): Reply | null {
    const header = ctx.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
    const expected = this.options.apiKey;
    if (token === '' || (expected !== undefined && token !== expected)) {
      return googleError(
        401,
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      );
    }
    return null;
  }

  protected route(ctx: RequestContext): RouteResult<SheetsCall> {
    const m = /^\/v4\/spreadsheets\/([^/]+)(?:\/(.*))?$/.exec(ctx.url.pathname);
    const id = m?.[1];
    if (!m || id === undefined) return { reply: googleError(404, 'Requested entity was not found.') };
    const spreadsheetId = decodeURIComponent(id);
    ctx.entry.spreadsheetId = spreadsheetId;
    const rest = m[2];
    const body = isRecord(ctx.body) ? ctx.body : {};
    if (ctx.bodyInvalid) return { reply: googleError(400, 'Invalid JSON payload received.') };
    const request = this.parseOp(ctx.method, rest, ctx.url, body);
    if (!request) return { reply: googleError(404, 'Requested entity was not found.') };
    return { call: { spreadsheetId, request, subject: subjectOf(request), brand: null } };
  }

  protected admission(call: SheetsCall): Admission {
    const write = isWrite(call.request.op);
    const rpm = (write ? this.options.writeRpm : this.options.readRpm) ?? this.options.rpm ?? DEFAULT_RPM;
    return { bucket: write ? 'write' : 'read', rpm };
  }

  protected serve(call: SheetsCall, ctx: RequestContext): Reply {
    try {
      if (!this.store.has(call.spreadsheetId)) throw new SheetsError(404, 'Requested entity was not found.');
      return { status: 200, body: this.execute(call, ctx) };
    } catch (err) {
      if (err instanceof SheetsError) return googleError(err.status, err.message);
      if (err instanceof A1ParseError || err instanceof WriteOutOfRangeError || err instanceof GridLimitError) {
        return googleError(400, err.message);
      }
      throw err;
    }
  }

  protected statusFaultReply(fault: StatusFault): Reply {
    return googleError(fault.status, fault.message ?? `Injected fault: HTTP ${fault.status}.`);
  }

  protected rateLimitReply(_d: RateLimitDecision, call: SheetsCall): Reply {
    const kind = isWrite(call.request.op) ? 'Write' : 'Read';
    return googleError(
      429,
      `Quota exceeded for quota metric '${kind} requests' and limit '${kind} requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:0'.`,
    );
  }

  protected override control(method: string, path: string, body: unknown): Reply | null {
    if (path !== '/__fake/sheets') return null;
    if (method === 'POST' && isRecord(body)) {
      const { spreadsheetId, sheetTitle, rows } = body;
      if (typeof spreadsheetId !== 'string' || typeof sheetTitle !== 'string' || !Array.isArray(rows)) {
        return { status: 400, body: { error: 'expected {spreadsheetId, sheetTitle, rows}' } };
      }
      this.setSheet(spreadsheetId, sheetTitle, rows.map((r: unknown) => (Array.isArray(r) ? r.map(String) : [])));
      return { status: 200, body: { ok: true } };
    }
    return null;
  }

  private parseOp(method: string, rest: string | undefined, url: URL, body: Record<string, unknown>): SheetsOp | null {
    if (rest === undefined || rest === '') return method === 'GET' ? { op: 'metadata' } : null;
    if (rest === 'values:batchGet' && method === 'GET') return { op: 'batchGet', ranges: url.searchParams.getAll('ranges') };
    if (rest === 'values:batchUpdate' && method === 'POST') return { op: 'batchUpdate', body };
    const v = /^values\/([^/]+)$/.exec(rest);
    const encoded = v?.[1];
    if (encoded === undefined) return null;
    const valueInputOption = url.searchParams.get('valueInputOption');
    // Encoded ranges never contain a literal ':' (it is %3A), so a trailing ':append' is the verb.
    if (encoded.endsWith(':append') && method === 'POST') {
      return { op: 'append', range: decodeURIComponent(encoded.slice(0, -':append'.length)), valueInputOption, body };
    }
    const range = decodeURIComponent(encoded);
    if (method === 'GET') return { op: 'get', range };
    if (method === 'PUT') return { op: 'update', range, valueInputOption, body };
    return null;
  }

  private execute(call: SheetsCall, ctx: RequestContext): unknown {
    const { spreadsheetId, request } = call;
    switch (request.op) {
      case 'metadata':
        return {
          spreadsheetId,
          properties: { title: spreadsheetId },
          sheets: this.store.sheets(spreadsheetId).map((g, index) => ({
            properties: {
              sheetId: g.sheetId,
              title: g.title,
              index,
              sheetType: 'GRID',
              gridProperties: { rowCount: g.rowCount, columnCount: g.columnCount },
            },
          })),
        };
      case 'get':
        return this.readRange(spreadsheetId, request.range);
      case 'batchGet':
        return { spreadsheetId, valueRanges: request.ranges.map((r) => this.readRange(spreadsheetId, r)) };
      case 'batchUpdate': {
        const option = checkValueInputOption(request.body['valueInputOption']);
        const data = request.body['data'] ?? [];
        if (!Array.isArray(data)) throw new SheetsError(400, "Invalid value at 'data': expected a list.");
        const plans = data.map((d: unknown, i) => {
          if (!isRecord(d) || typeof d['range'] !== 'string') throw new SheetsError(400, `Invalid value at 'data[${i}].range'.`);
          return this.plan(spreadsheetId, d['range'], readValues(d['values'], `data[${i}].values`));
        });
        const responses = this.apply(ctx, option, plans).map((w) => updateResponse(spreadsheetId, w));
        return {
          spreadsheetId,
          totalUpdatedRows: sum(responses.map((r) => r.updatedRows)),
          totalUpdatedColumns: sum(responses.map((r) => r.updatedColumns)),
          totalUpdatedCells: sum(responses.map((r) => r.updatedCells)),
          totalUpdatedSheets: new Set(plans.filter((_, i) => (responses[i]?.updatedCells ?? 0) > 0).map((p) => p.grid)).size,
          responses,
        };
      }
      case 'update': {
        const option = checkValueInputOption(request.valueInputOption);
        const plan = this.plan(spreadsheetId, request.range, readValues(request.body['values'], 'values'));
        const [w] = this.apply(ctx, option, [plan]);
        return updateResponse(spreadsheetId, w);
      }
      case 'append': {
        const option = checkValueInputOption(request.valueInputOption);
        const plan = this.plan(spreadsheetId, request.range, readValues(request.body['values'], 'values'));
        const tableRange = plan.grid.read({ ...plan.range, endRow: null }).range;
        // Append writes below the last row holding data in the range's columns, ignoring the range's rows.
        const at: A1Range = { ...plan.range, startRow: plan.grid.nextFreeRow(plan.range), endRow: null, endCol: null };
        const [w] = this.apply(ctx, option, [{ ...plan, range: at }]);
        return { spreadsheetId, tableRange, updates: updateResponse(spreadsheetId, w) };
      }
    }
  }

  private readRange(spreadsheetId: string, requested: string): Record<string, unknown> {
    const range = parseA1(requested);
    const grid = this.gridFor(spreadsheetId, range, requested);
    const read = grid.read(range);
    // Sheets leaves `values` out entirely when the range is empty.
    return { range: read.range, majorDimension: 'ROWS', ...(read.values.length > 0 ? { values: read.values } : {}) };
  }

  private plan(spreadsheetId: string, requested: string, values: CellInput[][]): PlannedWrite {
    const range = parseA1(requested);
    return { requested, grid: this.gridFor(spreadsheetId, range, requested), range, values };
  }

  /** Applies writes and records them; every range is checked first so a bad one in a batch writes nothing. */
  private apply(ctx: RequestContext, option: 'RAW' | 'USER_ENTERED', plans: PlannedWrite[]): WriteResult[] {
    for (const p of plans) p.grid.assertFits(p.range, p.values);
    const results = plans.map((p) => p.grid.write(p.range, p.values, option === 'USER_ENTERED'));
    const records: SheetWrite[] = results.map((r, i) => ({
      range: plans[i]?.requested ?? '',
      updatedRange: r.updatedRange,
      updatedCells: r.updatedCells,
      valueInputOption: option,
      formulaWritten: r.formulaWritten,
    }));
    ctx.entry.valueInputOption = option;
    ctx.entry.writes = records;
    ctx.entry.formulaWritten = records.some((w) => w.formulaWritten);
    return results;
  }

  private gridFor(spreadsheetId: string, range: A1Range, requested: string): SheetGrid {
    const grid = this.store.sheet(spreadsheetId, range.sheet);
    if (!grid) throw new SheetsError(400, `Unable to parse range: ${requested}`);
    return grid;
  }
}

function subjectOf(op: SheetsOp): string | null {
  switch (op.op) {
    case 'metadata':
      return null;
    case 'get':
    case 'update':
    case 'append':
      return op.range;
    case 'batchGet':
      return op.ranges.join(',');
    case 'batchUpdate': {
      const data = op.body['data'];
      if (!Array.isArray(data)) return null;
      return data.map((d: unknown) => (isRecord(d) && typeof d['range'] === 'string' ? d['range'] : '')).join(',');
    }
  }
}

/** UpdateValuesResponse; an empty write still names the requested range. */
function updateResponse(spreadsheetId: string, w: WriteResult | undefined): {
  spreadsheetId: string;
  updatedRange: string;
  updatedRows: number;
  updatedColumns: number;
  updatedCells: number;
} {
  return {
    spreadsheetId,
    updatedRange: w?.updatedRange ?? '',
    updatedRows: w?.updatedRows ?? 0,
    updatedColumns: w?.updatedColumns ?? 0,
    updatedCells: w?.updatedCells ?? 0,
  };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
