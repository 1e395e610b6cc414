// The Sheets API alone (Google's per-API package), not googleapis, which holds every Google
// API there is: about 200 MB on disk and 100 MB of memory once loaded.
import type { sheets_v4 } from '@googleapis/sheets';
import { classifySheetsError } from './classify-sheets-error.js';

export interface SheetsClientOptions {
  /** Points the client at another origin, e.g. the local fake (`http://127.0.0.1:PORT/`). */
  rootUrl?: string | undefined;
  /** A fixed OAuth access token (never refreshed). */
  accessToken?: string | undefined;
  /** A service-account key file, when no access token is given. */
  keyFile?: string | undefined;
}

export interface CellWrite {
  /** A1 range such as `'Brands'!B7:H7`. */
  range: string;
  values: string[][];
}

/**
 * The Google Sheets calls brandq makes: read a range, write many ranges at once. Client
 * retries are off so every request passes the shared limiter; writes are always `RAW`, so
 * text from the web or an LLM can never become a formula.
 */
export class SheetsClient {
  private api: Promise<sheets_v4.Sheets> | undefined;

  constructor(private readonly options: SheetsClientOptions) {}

  /**
   * Loaded on the first sheet call, not at import: a worker or producer that never meets a
   * sheet (every CSV run) does not load the Google client at all (docs/benchmarks.md).
   */
  private client(): Promise<sheets_v4.Sheets> {
    this.api ??= import('@googleapis/sheets').then(({ auth: googleAuth, sheets }) => {
      const options = this.options;
      let auth: sheets_v4.Options['auth'];
      if (options.accessToken) {
        const oauth = new googleAuth.OAuth2();
        oauth.setCredentials({ access_token: options.accessToken });
        auth = oauth;
      } else {
        auth = new googleAuth.GoogleAuth({
          ...(options.keyFile ? { keyFile: options.keyFile } : {}),
          scopes: ['https://www.googleapis.com/auth/spreadsheets'],
        });
      }
      return sheets({ version: 'v4', auth, retry: false, ...(options.rootUrl ? { rootUrl: options.rootUrl } : {}) });
    });
    return this.api;
  }

  async readValues(spreadsheetId: string, range: string): Promise<string[][]> {
    try {
      const api = await this.client();
      const res = await api.spreadsheets.values.get({ spreadsheetId, range, valueRenderOption: 'FORMATTED_VALUE' });
      return (res.data.values ?? []).map((row) => row.map((cell) => (cell === null || cell === undefined ? '' : String(cell))));
    } catch (error) {
      throw classifySheetsError(error, `read of ${range}`);
    }
  }

  async writeValues(spreadsheetId: string, writes: readonly CellWrite[]): Promise<number> {
    if (writes.length === 0) return 0;
    try {
      const api = await this.client();
      const res = await api.spreadsheets.values.batchUpdate({
        spreadsheetId,
        requestBody: { valueInputOption: 'RAW', data: writes.map((w) => ({ range: w.range, values: w.values })) },
      });
      return res.data.totalUpdatedCells ?? 0;
    } catch (error) {
      throw classifySheetsError(error, `write of ${writes.length} range(s)`);
    }
  }
}
