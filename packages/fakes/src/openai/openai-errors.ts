import type { Reply } from '../server/fake-server.js';
import type { StatusFault } from '../server/faults.js';

export type LlmFlavor = 'openai' | 'openrouter';

export interface LlmError {
  status: number;
  message: string;
  /** OpenAI `type`. */
  type: string;
  /** OpenAI `code`; also recorded in the ledger. */
  code: string | null;
  param?: string | null;
  /** OpenRouter `metadata`. */
  metadata?: Record<string, unknown>;
}

/** Renders one error in the wire shape of the configured flavor. */
export function llmErrorReply(flavor: LlmFlavor, e: LlmError): Reply {
  if (flavor === 'openrouter') {
    const body: Record<string, unknown> = { code: e.status, message: e.message };
    if (e.metadata) body['metadata'] = e.metadata;
    return { status: e.status, body: { error: body }, errorCode: e.code ?? String(e.status) };
  }
  return {
    status: e.status,
    body: { error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code } },
    ...(e.code !== null ? { errorCode: e.code } : {}),
  };
}

export function maskKey(key: string): string {
  if (key.length <= 8) return '*'.repeat(key.length);
  return `${key.slice(0, 3)}${'*'.repeat(Math.max(4, key.length - 7))}${key.slice(-4)}`;
}

const DEFAULT_MESSAGES: Record<number, { message: string; type: string }> = {
  400: { message: 'Bad request (injected fault).', type: 'invalid_request_error' },
  401: {
    message: 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
    type: 'invalid_request_error',
  },
  402: { message: 'Insufficient credits. Add more using https://openrouter.ai/settings/credits', type: 'insufficient_quota' },
  403: { message: 'You are not allowed to sample from this model.', type: 'invalid_request_error' },
  404: { message: 'The model does not exist or you do not have access to it.', type: 'invalid_request_error' },
  500: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error' },
  502: { message: 'Bad gateway.', type: 'server_error' },
  503: { message: 'The engine is currently overloaded, please try again later.', type: 'server_error' },
};

/** An injected status fault as this flavor would send it. */
export function llmFaultError(flavor: LlmFlavor, fault: StatusFault, rateLimitMessage: string): LlmError {
  const status = fault.status;
  if (status === 429 && fault.code === 'insufficient_quota') {
    return {
      status,
      message:
        fault.message ??
        'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
      type: 'insufficient_quota',
      code: 'insufficient_quota',
    };
  }
  if (status === 429) {
    return {
      status,
      message: fault.message ?? (flavor === 'openrouter' ? 'Rate limit exceeded' : rateLimitMessage),
      type: 'requests',
      code: fault.code ?? 'rate_limit_exceeded',
      metadata: { error_type: fault.code ?? 'rate_limit_exceeded', ...fault.metadata },
    };
  }
  const known = DEFAULT_MESSAGES[status];
  return {
    status,
    message: fault.message ?? known?.message ?? `Injected fault: HTTP ${status}.`,
    type: known?.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
    code: fault.code ?? (status === 401 ? 'invalid_api_key' : null),
    ...(status === 402
      ? { metadata: { limit_source: 'openrouter_credits', ...fault.metadata } }
      : fault.metadata
        ? { metadata: fault.metadata }
        : {}),
  };
}
