import type { NextFunction, Request, Response } from 'express';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True for methods that change state: everything but GET, HEAD and OPTIONS. */
export function isWrite(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

/**
 * Every state-changing request (ours and Bull Board's) must come from the board's own page:
 * its `Origin` (else its `Referer`) names the Host it was sent to. A browser with basic auth
 * cached sends the credentials with any cross-site form, so the credentials alone prove
 * nothing; a request with neither header is refused too (scripts send `Origin` themselves).
 * Writes carry JSON or nothing: a form or `text/plain` body, the kinds a cross-site page can
 * post without asking, gets 415.
 */
export function sameOriginWrites() {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!isWrite(req.method)) {
      next();
      return;
    }
    if (!fromOwnOrigin(req)) {
      res.status(403).json({
        code: 'CROSS_ORIGIN_WRITE',
        error: "writes must come from the board's own pages: send an Origin header naming this board (e.g. Origin: http://127.0.0.1:3000)",
      });
      return;
    }
    const type = req.headers['content-type'];
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if ((type !== undefined || hasBody) && type?.split(';')[0]?.trim().toLowerCase() !== 'application/json') {
      res.status(415).json({ code: 'UNSUPPORTED_MEDIA_TYPE', error: 'writes take a JSON body (Content-Type: application/json) or none' });
      return;
    }
    next();
  };
}

function fromOwnOrigin(req: Request): boolean {
  const host = req.headers.host?.toLowerCase();
  const claimed = req.headers.origin ?? req.headers.referer;
  if (!host || !claimed) return false;
  let url: URL;
  try {
    url = new URL(claimed);
  } catch {
    return false; // `Origin: null` (a sandboxed frame, a file: page) and junk alike
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.host.toLowerCase() === host;
}
