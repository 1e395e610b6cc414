import { STATUS_CODES } from 'node:http';
import type { NextFunction, Request, Response } from 'express';

interface HttpishError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  limit?: unknown;
}

/** Unknown routes: JSON, like every other answer of the API. */
export function notFound() {
  return (_req: Request, res: Response): void => {
    res.status(404).json({ code: 'NOT_FOUND', error: 'no such route' });
  };
}

/**
 * Every error as JSON, never Express's HTML page with a stack trace and file paths, and
 * never the request body back: a body too large (413), malformed JSON (400), and anything
 * unexpected (500, reported to `report` for the log, not to the client).
 */
export function jsonErrors(report: (error: unknown) => void) {
  return (error: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const e = (error ?? {}) as HttpishError;
    const given = Number(e.status ?? e.statusCode);
    const status = Number.isInteger(given) && given >= 400 && given < 600 ? given : 500;
    if (e.type === 'entity.too.large') {
      const limit = typeof e.limit === 'number' ? ` of ${Math.round(e.limit / 1024)} KiB` : '';
      res.status(413).json({ code: 'PAYLOAD_TOO_LARGE', error: `the request body is over the limit${limit}: send a shorter CSV text, or use a sheet` });
      return;
    }
    if (e.type === 'entity.parse.failed') {
      res.status(400).json({ code: 'MALFORMED_JSON', error: 'the request body is not valid JSON' });
      return;
    }
    if (status >= 500) report(error);
    res.status(status).json({ code: status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST', error: (STATUS_CODES[status] ?? 'error').toLowerCase() });
  };
}
