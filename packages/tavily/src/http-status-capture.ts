import { AsyncLocalStorage } from 'node:async_hooks';
import axios, { AxiosError, type AxiosResponse } from 'axios';

/**
 * `@tavily/core` throws a bare `Error` that drops the HTTP status and headers. It sends
 * its requests through axios's default instance (the same module instance we import: one
 * axios version in the workspace), so an interceptor records the status and headers of
 * the response into the async context of the call that made it. Classification then reads
 * facts, never guesses from message text.
 */
export interface CapturedHttp {
  status?: number;
  headers?: Record<string, string>;
  /** axios error code for failures without a response, e.g. ECONNRESET, ECONNABORTED. */
  code?: string;
}

const context = new AsyncLocalStorage<CapturedHttp>();
let installed = false;

function headersOf(response: AxiosResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    if (typeof value === 'string') out[name.toLowerCase()] = value;
    else if (typeof value === 'number') out[name.toLowerCase()] = String(value);
  }
  return out;
}

function install(): void {
  if (installed) return;
  installed = true;
  axios.interceptors.response.use(
    (response) => {
      const captured = context.getStore();
      if (captured) {
        captured.status = response.status;
        captured.headers = headersOf(response);
      }
      return response;
    },
    (error: unknown) => {
      const captured = context.getStore();
      if (captured && error instanceof AxiosError) {
        if (error.response) {
          captured.status = error.response.status;
          captured.headers = headersOf(error.response);
        }
        if (error.code) captured.code = error.code;
      }
      return Promise.reject(error);
    },
  );
}

/** Runs `call` and returns what the HTTP layer saw, whether it resolved or threw. */
export async function captureHttp<T>(call: () => Promise<T>): Promise<{ value?: T; error?: unknown; http: CapturedHttp }> {
  install();
  const http: CapturedHttp = {};
  try {
    const value = await context.run(http, call);
    return { value, http };
  } catch (error) {
    return { error, http };
  }
}
