import type { IncomingMessage, ServerResponse } from 'node:http';

/** Generous cap: the fakes only ever receive prompts and sheet writes. */
const MAX_BODY_BYTES = 20 * 1024 * 1024;

export interface ParsedBody {
  /** Parsed JSON, or undefined for an empty body. */
  json: unknown;
  /** The body was present but not valid JSON. */
  invalid: boolean;
}

export async function readJsonBody(req: IncomingMessage): Promise<ParsedBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_BODY_BYTES) return { json: undefined, invalid: true };
    chunks.push(buf);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { json: undefined, invalid: false };
  try {
    return { json: JSON.parse(text) as unknown, invalid: false };
  } catch {
    return { json: undefined, invalid: true };
  }
}

export function sendBody(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
