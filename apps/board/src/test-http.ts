import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { boardHosts } from './allowed-hosts.js';
import { createBoardApp, type BoardOptions } from './board-app.js';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTP request with exactly the headers given, `Host` included (fetch silently drops a
 * forged Host; a DNS-rebinding page's requests carry the attacker's name in it).
 */
export function rawRequest(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawAnswer> {
  const url = new URL(path, base);
  // An explicit length: Node sends a DELETE's body without one, and the server would read it
  // as the next request.
  const headers = options.body === undefined ? { ...options.headers } : { 'content-length': String(Buffer.byteLength(options.body)), ...options.headers };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: options.method ?? 'GET', headers, setHost: !options.headers?.['host'] },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The board options a test leaves to their defaults: no limiter, no metrics, every write allowed. */
type BoardTestOptions = Omit<BoardOptions, 'isAllowedHost' | 'limiterStats' | 'metrics' | 'readOnly'> & Partial<Pick<BoardOptions, 'limiterStats' | 'metrics' | 'readOnly'>>;

/**
 * A board listening on a free loopback port, its Host allowlist set to that port as
 * `main.ts` sets it; `close` ends its open connections (event streams) too.
 */
export async function listenBoard(options: BoardTestOptions): Promise<{ base: string; close: () => Promise<void> }> {
  let hosts = new Set<string>();
  const app = createBoardApp({
    readOnly: false,
    limiterStats: async () => ({}),
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    ...options,
    isAllowedHost: (host) => hosts.has(host),
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  hosts = boardHosts('127.0.0.1', port);
  return {
    base: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
