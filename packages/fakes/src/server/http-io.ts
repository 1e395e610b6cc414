import type { IncomingMessage, ServerResponse } from 'node:http';

/** Generous cap: the fakes only ever receive prompts and sheet writes (file uploads ask for more). */
export const MAX_BODY_BYTES = 20 * 1024 * 1024;

export interface ParsedBody {
  /** Parsed JSON, or undefined for an empty body (and for a multipart body: read `raw`). */
  json: unknown;
  /** The body was present but not valid JSON, or larger than the cap. */
  invalid: boolean;
  /** The bytes received (empty when the body was over the cap). */
  raw: Buffer;
}

export async function readJsonBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<ParsedBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > maxBytes) return { json: undefined, invalid: true, raw: Buffer.alloc(0) };
    chunks.push(buf);
  }
  const raw = Buffer.concat(chunks);
  // A multipart upload is not JSON: the route parses `raw` itself.
  if (req.headers['content-type']?.toLowerCase().startsWith('multipart/')) return { json: undefined, invalid: false, raw };
  const text = raw.toString('utf8');
  if (text.trim() === '') return { json: undefined, invalid: false, raw };
  try {
    return { json: JSON.parse(text) as unknown, invalid: false, raw };
  } catch {
    return { json: undefined, invalid: true, raw };
  }
}

export function sendBody(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string>): void {
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
