import { timingSafeEqual, createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

function sameSecret(a: string, b: string): boolean {
  // Hash first so the comparison takes the same time whatever the lengths.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** HTTP basic auth in front of everything the board serves; the user it let in is `res.locals.user`. */
export function basicAuth(user: string, password: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    // RFC 7617: the scheme name is case-insensitive, and any amount of space may follow it.
    const match = /^basic +([A-Za-z0-9+/=]+) *$/i.exec(req.headers.authorization ?? '');
    const encoded = match?.[1];
    if (encoded) {
      const decoded = Buffer.from(encoded, 'base64').toString('utf8');
      const sep = decoded.indexOf(':');
      if (sep > 0 && sameSecret(decoded.slice(0, sep), user) && sameSecret(decoded.slice(sep + 1), password)) {
        // Who acts, for the run's history (the run controls record it).
        res.locals.user = user;
        next();
        return;
      }
    }
    res.setHeader('WWW-Authenticate', 'Basic realm="brandq", charset="UTF-8"');
    res.status(401).json({ code: 'UNAUTHORIZED', error: 'authentication required' });
  };
}

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}
