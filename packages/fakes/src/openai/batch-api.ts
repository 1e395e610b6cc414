import type { Reply, RequestContext } from '../server/fake-server.js';
import { BatchEngine, type BatchHost } from './batches.js';
import { FileStore, MAX_UPLOAD_BYTES, noSuchFile } from './files.js';
import { llmErrorReply, type LlmError } from './openai-errors.js';

/** `/v1/files...` and `/v1/batches...` (the `/v1` prefix optional, like the chat path). */
const API_PATH = /^(?:\/v1)?\/(files|batches)(?:\/([^/]+))?(?:\/(content|cancel))?$/;
/** Room for the multipart framing around a file of the largest size OpenAI accepts. */
const UPLOAD_BODY_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024;

/**
 * OpenAI's Files and Batches endpoints as the openai SDK calls them (`files.create`,
 * `.retrieve`, `.list`, `.delete`, `.content`; `batches.create`, `.retrieve`, `.list`,
 * `.cancel`). They are outside the chat rpm/tpm limits and carry no x-ratelimit-* headers.
 */
export class BatchApi {
  readonly files: FileStore;
  readonly batches: BatchEngine;

  constructor(host: BatchHost) {
    // A per-instance tag: a restarted fake never hands out an id a client may still hold.
    const tag = Date.now().toString(36);
    this.files = new FileStore(tag);
    this.batches = new BatchEngine(host, this.files, tag);
  }

  static handles(path: string): boolean {
    return API_PATH.test(path);
  }

  /** Body cap of a request: uploads may be as large as OpenAI's file limit. */
  static maxRequestBytes(method: string, path: string): number | null {
    return method === 'POST' && API_PATH.exec(path)?.[1] === 'files' ? UPLOAD_BODY_BYTES : null;
  }

  /** Answers a files or batches request; null when the path is not one of them. */
  async route(ctx: RequestContext): Promise<Reply | null> {
    const match = API_PATH.exec(ctx.url.pathname);
    if (!match) return null;
    const [, resource, rawId, action] = match;
    const id = rawId === undefined ? undefined : decodeURIComponent(rawId);
    const key = `${ctx.method} ${resource}${id === undefined ? '' : '/:id'}${action === undefined ? '' : `/${action}`}`;
    switch (key) {
      case 'POST files': {
        if (ctx.bodyInvalid) return error(tooLarge());
        const created = await this.files.upload(ctx.headers['content-type'], ctx.rawBody);
        return 'error' in created ? error(created.error) : ok(created.file);
      }
      case 'GET files':
        return ok(this.files.list(ctx.url.searchParams));
      case 'GET files/:id': {
        const file = this.files.get(id ?? '');
        return file ? ok(file.object) : error(noSuchFile(id ?? ''));
      }
      case 'DELETE files/:id':
        return this.files.delete(id ?? '') ? ok({ id, object: 'file', deleted: true }) : error(noSuchFile(id ?? ''));
      case 'GET files/:id/content': {
        const file = this.files.get(id ?? '');
        if (!file) return error(noSuchFile(id ?? ''));
        return { status: 200, raw: file.content, headers: { 'content-type': 'application/octet-stream' }, bare: true };
      }
      case 'POST batches': {
        if (ctx.bodyInvalid) return error(unparsable());
        const created = this.batches.create(ctx.body);
        return 'error' in created ? error(created.error) : ok(created.batch);
      }
      case 'GET batches':
        return ok(this.batches.list(ctx.url.searchParams));
      case 'GET batches/:id': {
        const found = this.batches.retrieve(id ?? '');
        return 'error' in found ? error(found.error) : ok(found.batch);
      }
      case 'POST batches/:id/cancel': {
        const cancelled = this.batches.cancel(id ?? '');
        return 'error' in cancelled ? error(cancelled.error) : ok(cancelled.batch);
      }
      default:
        return error({ status: 404, message: `Invalid URL (${ctx.method} ${ctx.url.pathname})`, type: 'invalid_request_error', code: null });
    }
  }

  /** Forgets every file, batch and batch injection. */
  reset(): void {
    this.batches.reset();
    this.files.clear();
  }
}

function ok(body: unknown): Reply {
  return { status: 200, body, bare: true };
}

function error(e: LlmError): Reply {
  return { ...llmErrorReply('openai', e), bare: true };
}

function tooLarge(): LlmError {
  return { status: 413, message: 'File is too large.', type: 'invalid_request_error', code: null, param: 'file' };
}

function unparsable(): LlmError {
  return {
    status: 400,
    message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
    type: 'invalid_request_error',
    code: null,
  };
}
