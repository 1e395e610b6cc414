import { isRecord } from '../server/http-io.js';

/** One request of a batch input file: `{custom_id, method: "POST", url, body}`. */
export interface BatchInputLine {
  /** 1-based line number in the file, as OpenAI's batch errors count them. */
  line: number;
  customId: string;
  body: Record<string, unknown>;
  /** `body.model` when it is a string. */
  model: string | null;
}

/** An entry of a failed batch's `errors.data`, in OpenAI's shape. */
export interface BatchError {
  code: string;
  message: string;
  line: number | null;
  param: string | null;
}

export interface BatchFileLimits {
  /** Most requests per input file (OpenAI: 50,000). */
  maxRequests: number;
  /** Most bytes per input file (OpenAI: 200 MB). */
  maxBytes: number;
}

export type ParsedBatchInput = { lines: BatchInputLine[]; model: string | null } | { errors: BatchError[] };

/** A file with errors on every line reports the first ones, as OpenAI caps its error list. */
const MAX_REPORTED_ERRORS = 100;

/**
 * Validates a batch input file the way OpenAI's `validating` phase does; any error fails the
 * whole batch (status `failed`, `errors.data`) and no line runs. Codes: `empty_file`,
 * `too_many_tasks`, `file_too_large`, `invalid_json_line`, `invalid_request` (a line without
 * custom_id, method POST, url or an object body), `url_mismatch`, `duplicate_custom_id`,
 * `model_mismatch` (one model per batch). `file_too_large` and `invalid_request` are the
 * fake's names; the others are the codes OpenAI documents.
 */
export function parseBatchInput(content: Buffer, endpoint: string, limits: BatchFileLimits): ParsedBatchInput {
  if (content.length > limits.maxBytes) {
    return {
      errors: [fileError('file_too_large', `The input file is ${content.length} bytes; a batch input file can be at most ${limits.maxBytes} bytes.`)],
    };
  }
  const rows = content
    .toString('utf8')
    .split('\n')
    .map((text, i) => ({ text: text.trim(), line: i + 1 }))
    .filter((r) => r.text !== '');
  if (rows.length === 0) return { errors: [fileError('empty_file', 'The batch input file is empty.')] };
  if (rows.length > limits.maxRequests) {
    return {
      errors: [fileError('too_many_tasks', `The batch input file has ${rows.length} requests; a batch can have at most ${limits.maxRequests}.`)],
    };
  }

  const errors: BatchError[] = [];
  const lines: BatchInputLine[] = [];
  const seen = new Set<string>();
  let model: string | null = null;
  for (const { text, line } of rows) {
    const problem = readLine(text, line, endpoint);
    if ('error' in problem) {
      errors.push(problem.error);
      continue;
    }
    const parsed = problem.line;
    if (seen.has(parsed.customId)) {
      errors.push({
        code: 'duplicate_custom_id',
        message: 'The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.',
        line,
        param: 'custom_id',
      });
      continue;
    }
    seen.add(parsed.customId);
    if (parsed.model !== null) {
      if (model === null) model = parsed.model;
      else if (parsed.model !== model) {
        errors.push({
          code: 'model_mismatch',
          message: `The model '${parsed.model}' of this request differs from '${model}' of the others; all requests in a batch must use the same model.`,
          line,
          param: 'body.model',
        });
        continue;
      }
    }
    lines.push(parsed);
  }
  if (errors.length > 0) return { errors: errors.slice(0, MAX_REPORTED_ERRORS) };
  return { lines, model };
}

function readLine(text: string, line: number, endpoint: string): { line: BatchInputLine } | { error: BatchError } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: { code: 'invalid_json_line', message: 'This line is not parseable as valid JSON.', line, param: null } };
  }
  if (!isRecord(value)) return { error: invalidRequest(line, 'custom_id') };
  const { custom_id: customId, method, url, body } = value;
  if (typeof customId !== 'string' || customId === '') return { error: invalidRequest(line, 'custom_id') };
  if (method !== 'POST') return { error: invalidRequest(line, 'method') };
  if (typeof url !== 'string') return { error: invalidRequest(line, 'url') };
  if (url !== endpoint) {
    return {
      error: {
        code: 'url_mismatch',
        message: `The URL provided for this request does not match the batch endpoint (${endpoint}).`,
        line,
        param: 'url',
      },
    };
  }
  if (!isRecord(body)) return { error: invalidRequest(line, 'body') };
  const model = typeof body['model'] === 'string' ? body['model'] : null;
  return { line: { line, customId, body, model } };
}

function invalidRequest(line: number, param: string): BatchError {
  return { code: 'invalid_request', message: `Missing or invalid '${param}' in this request.`, line, param };
}

function fileError(code: string, message: string): BatchError {
  return { code, message, line: null, param: null };
}
