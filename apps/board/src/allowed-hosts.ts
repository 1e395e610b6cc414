import type { NextFunction, Request, Response } from 'express';

/**
 * The `Host` values the board answers to: the address it is bound to, `localhost`,
 * `127.0.0.1` and `[::1]`, each with its port, plus `BOARD_ALLOWED_HOSTS` (exact
 * `host[:port]` entries, e.g. a TLS proxy's `board.example.com`).
 */
export function boardHosts(boundHost: string, port: number, extra: readonly string[] = []): Set<string> {
  const bound = boundHost.includes(':') && !boundHost.startsWith('[') ? `[${boundHost}]` : boundHost;
  const wildcard = bound === '0.0.0.0' || bound === '[::]';
  const names = ['localhost', '127.0.0.1', '[::1]', ...(wildcard ? [] : [bound])];
  return new Set([...names.map((h) => `${h.toLowerCase()}:${port}`), ...extra.map((h) => h.toLowerCase())]);
}

/**
 * Refuses a request whose `Host` is not the board's own (421): a page on a rebound DNS name
 * reaches the board's socket, but never with a Host the board knows.
 */
export function requireAllowedHost(isAllowed: (host: string) => boolean) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const host = req.headers.host?.toLowerCase();
    if (host && isAllowed(host)) {
      next();
      return;
    }
    res.status(421).json({ code: 'HOST_NOT_ALLOWED', error: 'this board does not answer to that Host: reach it by its own address, or add the name to BOARD_ALLOWED_HOSTS' });
  };
}
