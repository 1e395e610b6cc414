import type { LlmError } from './openai-errors.js';

/** What a file is for; the fake stores any of OpenAI's values, the Batch API reads `batch` ones. */
export type FilePurpose = 'assistants' | 'batch' | 'fine-tune' | 'vision' | 'user_data' | 'evals' | 'batch_output';
const UPLOAD_PURPOSES: ReadonlySet<string> = new Set(['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals']);

/** OpenAI's `File` object, as `files.create` / `files.retrieve` answer it. */
export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: FilePurpose;
  status: 'processed';
  expires_at: number | null;
  status_details: null;
}

export interface StoredFile {
  object: FileObject;
  content: Buffer;
  /** Creation order: lists sort by it (created_at has one-second resolution). */
  seq: number;
}

/** Batch input files expire after 30 days unless the upload says otherwise (OpenAI's default). */
const BATCH_FILE_TTL_S = 30 * 24 * 3600;
/** OpenAI's per-file upload cap. */
export const MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

export type FileResult = { file: FileObject } | { error: LlmError };

/**
 * The fake's file storage: uploads (`POST /v1/files`, multipart/form-data as the openai SDK
 * sends it) and the output and error files its batches write.
 */
export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private seq = 0;

  /** `tag` keeps ids of different fake instances apart (a restarted fake never reuses an id). */
  constructor(private readonly tag: string) {}

  /** Parses and stores an upload; errors are OpenAI's 400s for a bad form. */
  async upload(contentType: string | undefined, raw: Buffer): Promise<FileResult> {
    if (!contentType?.toLowerCase().startsWith('multipart/form-data')) {
      return { error: badRequest("Expected a multipart/form-data body with 'file' and 'purpose'.", null) };
    }
    let form: FormData;
    try {
      form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
    } catch (err) {
      return { error: badRequest(`Could not parse the multipart form: ${String(err)}`, null) };
    }
    const purpose = form.get('purpose');
    if (typeof purpose !== 'string' || purpose === '') return { error: missing('purpose') };
    if (!UPLOAD_PURPOSES.has(purpose)) {
      return { error: badRequest(`Invalid value for 'purpose': '${purpose}'.`, 'purpose', 'invalid_value') };
    }
    const file = form.get('file');
    if (file === null || typeof file === 'string') return { error: missing('file') };
    if (purpose === 'batch' && !file.name.toLowerCase().endsWith('.jsonl')) {
      return { error: badRequest('Invalid file format for Batch API. Must be .jsonl', null) };
    }
    const content = Buffer.from(await file.arrayBuffer());
    const expiresAfter = Number(form.get('expires_after[seconds]'));
    const ttl = Number.isInteger(expiresAfter) && expiresAfter > 0 ? expiresAfter : purpose === 'batch' ? BATCH_FILE_TTL_S : null;
    return { file: this.put(file.name, purpose as FilePurpose, content, ttl).object };
  }

  /** Stores a file the fake itself writes (batch output and error files). */
  put(filename: string, purpose: FilePurpose, content: Buffer, ttlSeconds: number | null): StoredFile {
    const createdAt = Math.floor(Date.now() / 1000);
    const seq = ++this.seq;
    const stored: StoredFile = {
      seq,
      content,
      object: {
        id: `file-fake${this.tag}${seq}`,
        object: 'file',
        bytes: content.length,
        created_at: createdAt,
        filename,
        purpose,
        status: 'processed',
        expires_at: ttlSeconds === null ? null : createdAt + ttlSeconds,
        status_details: null,
      },
    };
    this.files.set(stored.object.id, stored);
    return stored;
  }

  get(id: string): StoredFile | undefined {
    return this.files.get(id);
  }

  /** `GET /v1/files`: newest first unless `order=asc`, optionally one purpose, cursor `after`. */
  list(query: URLSearchParams): unknown {
    const purpose = query.get('purpose');
    const ascending = query.get('order') === 'asc';
    const all = [...this.files.values()]
      .filter((f) => purpose === null || f.object.purpose === purpose)
      .sort((a, b) => (ascending ? a.seq - b.seq : b.seq - a.seq))
      .map((f) => f.object);
    return cursorPage(all, query, 10_000);
  }

  delete(id: string): boolean {
    return this.files.delete(id);
  }

  clear(): void {
    this.files.clear();
  }
}

/**
 * One page of a cursor list as the SDK's `CursorPage` reads it: `data`, `has_more`, and the
 * next page is asked with `after=<last id>`. `limit` is clamped to 1..maxLimit (default 20).
 */
export function cursorPage<T extends { id: string }>(items: readonly T[], query: URLSearchParams, maxLimit: number): unknown {
  const rawLimit = Number(query.get('limit') ?? 20);
  const limit = Number.isInteger(rawLimit) ? Math.min(Math.max(rawLimit, 1), maxLimit) : 20;
  const after = query.get('after');
  const start = after === null ? 0 : items.findIndex((item) => item.id === after) + 1;
  // An unknown cursor answers an empty page rather than starting over (no item is listed twice).
  const page = after !== null && start === 0 ? [] : items.slice(start, start + limit);
  return {
    object: 'list',
    data: page,
    first_id: page[0]?.id ?? null,
    last_id: page[page.length - 1]?.id ?? null,
    has_more: start + page.length < items.length && page.length > 0,
  };
}

export function noSuchFile(id: string): LlmError {
  return { status: 404, message: `No such File object: ${id}`, type: 'invalid_request_error', code: null, param: 'id' };
}

function missing(param: string): LlmError {
  return badRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
}

function badRequest(message: string, param: string | null, code: string | null = null): LlmError {
  return { status: 400, message, type: 'invalid_request_error', code, param };
}
