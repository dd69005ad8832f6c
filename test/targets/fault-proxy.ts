/**
 * A small HTTP proxy on 127.0.0.1 that sits between the openai engine and a real server and
 * injects faults. Each distinct request body gets a fixed number of faulted attempts (taken in
 * turn from `faults`) before it is passed through untouched, so every request ends ok within a
 * known number of retries, and the test can check that each one was delivered exactly once.
 */
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * `echo-headers-400` / `echo-headers-500`: the server quotes the request's headers (Authorization
 * included) in its error body, as JSON / as plain header lines — as some gateways and debug servers do.
 */
export type Fault =
  | '429'
  | '500'
  | '503'
  | 'hang'
  | 'drop'
  | 'drop-mid-body'
  | 'malformed-json'
  | 'wrong-shape'
  | 'echo-headers-400'
  | 'echo-headers-500';

export interface FaultProxyOptions {
  /** `http://127.0.0.1:port` of the real server. */
  upstream: string;
  faults: readonly Fault[];
  /** Faulted attempts for the i-th distinct body (default: i mod (faults.length + 1)). */
  faultsFor?: (bodyOrdinal: number) => number;
  /** Rewrite a request body before forwarding it (to emulate servers that ignore a parameter). */
  rewrite?: (body: Record<string, unknown>) => Record<string, unknown>;
  /** Listen on this port (default: any free one), e.g. to bring a refused replica back at its address. */
  port?: number;
}

export interface FaultProxy {
  url: string;
  /** Faults injected, by kind. */
  injected: Map<Fault, number>;
  /** Intact 200 responses delivered, per request body hash. */
  delivered: Map<string, number>;
  close(): Promise<void>;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const attemptsByBody = new Map<string, number>();
  const ordinalByBody = new Map<string, number>();
  const injected = new Map<Fault, number>();
  const delivered = new Map<string, number>();
  let nextFault = 0;
  const upstream = new URL(options.upstream);
  const faultsFor = options.faultsFor ?? ((ordinal: number) => ordinal % (options.faults.length + 1));

  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const key = createHash('sha256').update(`${req.url} ${body}`).digest('hex');
    if (!ordinalByBody.has(key)) ordinalByBody.set(key, ordinalByBody.size);
    const attempt = attemptsByBody.get(key) ?? 0;
    attemptsByBody.set(key, attempt + 1);
    const fault =
      attempt < faultsFor(ordinalByBody.get(key)!) ? options.faults[nextFault++ % options.faults.length] : undefined;
    if (fault) injected.set(fault, (injected.get(fault) ?? 0) + 1);
    switch (fault) {
      case '429':
        return reply(res, 429, '{"error":{"message":"rate limited"}}', { 'retry-after': '0' });
      case '500':
      case '503':
        return reply(res, Number(fault), '{"error":{"message":"injected server error"}}');
      case 'echo-headers-400':
        return reply(
          res,
          400,
          JSON.stringify({ error: { message: `invalid request; headers received: ${JSON.stringify(req.headers)}` } }),
        );
      case 'echo-headers-500': {
        const lines = [];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        return reply(res, 500, `upstream error while handling\n${lines.join('\n')}`);
      }
      case 'hang':
        return; // never answer; the client's timeout must fire (closeAllConnections ends it)
      case 'drop':
        return req.socket.destroy();
      default:
        break;
    }
    let forwarded = body;
    if (options.rewrite && body)
      forwarded = JSON.stringify(options.rewrite(JSON.parse(body) as Record<string, unknown>));
    const upstreamResponse = await forward(upstream, req, forwarded);
    if (fault === 'drop-mid-body') {
      res.writeHead(upstreamResponse.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(upstreamResponse.body),
      });
      res.write(upstreamResponse.body.slice(0, upstreamResponse.body.length >> 1));
      return setTimeout(() => req.socket.destroy(), 5);
    }
    if (fault === 'malformed-json')
      return reply(res, 200, upstreamResponse.body.slice(0, upstreamResponse.body.length - 7));
    if (fault === 'wrong-shape')
      return reply(res, 200, JSON.stringify({ choices: 'not a list', upstream: upstreamResponse.body.length }));
    if (upstreamResponse.status === 200) delivered.set(key, (delivered.get(key) ?? 0) + 1);
    reply(res, upstreamResponse.status, upstreamResponse.body);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    injected,
    delivered,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function forward(upstream: URL, req: IncomingMessage, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 502, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}
