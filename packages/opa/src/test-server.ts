import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import { evaluateToolAccess } from './tool-access-policy.js';

/**
 * A rule of the test server: computes the document at its path from the input and the data.
 * Return `undefined` for an undefined rule. Throw {@link BuiltinError} to act like a failing
 * built-in (undefined, or a 500 `eval_builtin_error` with `?strict-builtin-errors`); any other
 * throw is a 500 `internal_error`.
 *
 * @example
 * ```ts
 * const rules: Record<string, TestRule> = { 'httpapi/authz/allow': (input) => (input as { user?: string }).user === 'alice' };
 * ```
 */
export type TestRule = (input: unknown, data: Record<string, unknown>) => unknown;

/**
 * Thrown by a {@link TestRule} to stand for a failing built-in function (for example a division by zero).
 *
 * @example
 * ```ts
 * const rule: TestRule = () => { throw new BuiltinError('div: divide by zero'); };
 * ```
 */
export class BuiltinError extends Error {
  override readonly name = 'BuiltinError';
}

/**
 * A fault the test server injects into Data API answers (the Health API is not affected, except by `down`).
 *
 * @example
 * ```ts
 * await opa.fault({ kind: 'slow', delayMs: 2_000 });
 * await opa.fault({ kind: 'error500', times: 3 });
 * await opa.fault(null); // healthy again
 * ```
 */
export type TestFault =
  /** Stop listening: connections are refused. */
  | { kind: 'down' }
  /** Answer after `delayMs` (default 5 s). */
  | { kind: 'slow'; delayMs?: number; times?: number }
  /** 500 `internal_error` with an `eval_conflict_error`. */
  | { kind: 'error500'; times?: number }
  /** 400 `invalid_parameter`. */
  | { kind: 'error400'; times?: number }
  /** 200 with a body that is not JSON. */
  | { kind: 'garbage'; times?: number }
  /** Send the headers and half of the body, then reset the connection. */
  | { kind: 'reset'; times?: number }
  /** 200 with a `result` of a shape no decision has (`"yes"`). */
  | { kind: 'wrong_shape'; times?: number }
  /** 200 with a body of `bytes` bytes (default 2 MiB). */
  | { kind: 'huge'; bytes?: number; times?: number };

/**
 * Options of {@link startOpaTestServer}.
 *
 * @example
 * ```ts
 * const options: OpaTestServerOptions = { dataFile: 'policies/roles.json', token: 'test-token' };
 * ```
 */
export interface OpaTestServerOptions {
  /** The base data document (for example `policies/roles.json`). */
  data?: Record<string, unknown>;
  /** A JSON file to load as the base data document, for example `'policies/roles.json'`. */
  dataFile?: string;
  /** Extra rules by Data API path (`a/b/c`). */
  rules?: Record<string, TestRule>;
  /** Mount the shipped tool-access policy at `amas/tool_access/decision`. Default true. */
  toolAccess?: boolean;
  /** Answer with a `decision_id`, as OPA does with decision logging on. Default true. */
  decisionIds?: boolean;
  /** Require `Authorization: Bearer <token>` (OPA's `--authentication=token`). */
  token?: string;
  /** Bundle revisions reported by `?provenance`. */
  bundles?: Record<string, string>;
  /** Port; default 0 (a free port). */
  port?: number;
  /** Host; default `127.0.0.1`. */
  host?: string;
}

/**
 * Counts of what reached the server (refused connections never do).
 *
 * @example
 * ```ts
 * expect(opa.stats().data).toBe(1);
 * ```
 */
export interface OpaTestServerStats {
  data: number;
  health: number;
}

/**
 * An OPA-compatible server for tests: the Data API and the Health API as OPA documents them, the
 * shipped tool-access policy, and fault injection.
 *
 * @example
 * ```ts
 * const opa = await startOpaTestServer({ dataFile: 'policies/roles.json' });
 * const enforcer = createEnforcer({ url: opa.url });
 * // ...
 * await opa.close();
 * ```
 */
export interface OpaTestServer {
  readonly url: string;
  readonly port: number;
  /** Inject a fault, or `null` to heal. `down` closes the listener; healing reopens it on the same port. */
  fault(fault: TestFault | null): Promise<void>;
  stats(): OpaTestServerStats;
  resetStats(): void;
  /** Headers of the last Data API request (to check bearer tokens and custom headers). */
  lastHeaders(): http.IncomingHttpHeaders | undefined;
  /** Bundle and plugin health, for `/health?bundles` and `/health?plugins`; `live`/`ready` for `/health/live|ready`. */
  setHealth(health: {
    bundlesReady?: boolean;
    plugins?: Record<string, 'OK' | 'NOT_READY' | 'ERROR'>;
    live?: boolean;
    ready?: boolean;
  }): void;
  /** Replace the base data document. */
  setData(data: Record<string, unknown>): void;
  close(): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

// Data paths come from the request: walk own properties only, and write keys such as "__proto__"
// as plain keys (as OPA stores them), so that no request can reach or change Object.prototype.
const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
const setOwn = (o: Record<string, unknown>, k: string, value: unknown) => {
  Object.defineProperty(o, k, { value, writable: true, enumerable: true, configurable: true });
};

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(String(status));
  }
}

const MAX_BODY = 8 * 1024 * 1024;
const GZIP_MIN = 1024;

/**
 * Starts an {@link OpaTestServer} on 127.0.0.1. With the defaults it is a ready "OPA" for the shipped
 * tool-access policy: give it the role data and point an enforcer at `url`.
 *
 * @example
 * ```ts
 * import { startOpaTestServer } from '@amas/opa/testing';
 * const opa = await startOpaTestServer({ dataFile: 'policies/roles.json' });
 * console.log(`OPA-compatible server on ${opa.url}`);
 * ```
 */
export async function startOpaTestServer(options: OpaTestServerOptions = {}): Promise<OpaTestServer> {
  let data: Record<string, unknown> = structuredClone(
    options.data ??
      (options.dataFile
        ? (JSON.parse(readFileSync(options.dataFile, 'utf8')) as Record<string, unknown>)
        : {}),
  );
  const rules = new Map<string, TestRule>();
  if (options.toolAccess !== false) {
    rules.set('amas/tool_access/decision', (input, d) => evaluateToolAccess(d, input));
  }
  for (const [path, rule] of Object.entries(options.rules ?? {}))
    rules.set(path.replace(/^\/+|\/+$/g, ''), rule);
  const decisionIds = options.decisionIds !== false;
  const host = options.host ?? '127.0.0.1';
  let current: (TestFault & { times?: number }) | null = null;
  let remaining = Number.POSITIVE_INFINITY;
  let stats: OpaTestServerStats = { data: 0, health: 0 };
  let lastHeaders: http.IncomingHttpHeaders | undefined;
  let health = {
    bundlesReady: true,
    plugins: {} as Record<string, string>,
    live: undefined as boolean | undefined,
    ready: undefined as boolean | undefined,
  };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const takeFault = (): TestFault | null => {
    if (!current || current.kind === 'down') return null;
    if (remaining <= 0) return null;
    remaining--;
    return current;
  };

  const send = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    body: unknown,
    pretty = false,
  ) => {
    let text = body === undefined ? '' : JSON.stringify(body, null, pretty ? 2 : undefined);
    if (text) text += '\n';
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    let payload: Buffer = Buffer.from(text);
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && payload.length >= GZIP_MIN) {
      payload = gzipSync(payload);
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(payload.length);
    res.writeHead(status, headers).end(payload);
  };

  const resolveDoc = (segments: string[], input: unknown, strict: boolean): unknown => {
    const evalRule = (path: string): unknown => {
      const rule = rules.get(path) as TestRule;
      try {
        return rule(input, data);
      } catch (err) {
        if (err instanceof BuiltinError) {
          if (!strict) return undefined;
          throw new HttpProblem(500, {
            code: 'internal_error',
            message: 'error(s) occurred while evaluating query',
            errors: [
              {
                code: 'eval_builtin_error',
                message: err.message,
                location: { file: 'test', row: 1, col: 1 },
              },
            ],
          });
        }
        throw new HttpProblem(500, {
          code: 'internal_error',
          message: 'error(s) occurred while evaluating query',
          errors: [
            { code: 'eval_internal_error', message: err instanceof Error ? err.message : String(err) },
          ],
        });
      }
    };
    const joined = segments.join('/');
    if (rules.has(joined)) return evalRule(joined);
    let doc: unknown = data;
    for (const s of segments) {
      doc = isObject(doc) && Object.hasOwn(doc, s) ? doc[s] : undefined;
      if (doc === undefined) break;
    }
    const below = [...rules.keys()].filter((p) => segments.length === 0 || p.startsWith(`${joined}/`));
    if (below.length === 0) return doc;
    if (doc !== undefined && !isObject(doc)) return doc;
    const out: Record<string, unknown> = doc === undefined ? {} : structuredClone(doc);
    for (const p of below) {
      const rest = p.split('/').slice(segments.length);
      const value = evalRule(p);
      if (value === undefined) continue;
      let node = out;
      for (const k of rest.slice(0, -1)) {
        if (!isObject(node[k])) node[k] = {};
        node = node[k] as Record<string, unknown>;
      }
      node[rest[rest.length - 1] as string] = value;
    }
    return out;
  };

  const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new HttpProblem(413, { code: 'invalid_parameter', message: 'request body too large' }));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const dataAnswer = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    segments: string[],
  ) => {
    const q = url.searchParams;
    const flag = (name: string) => q.has(name) && q.get(name) !== 'false';
    let input: unknown;
    let warn = false;
    if (req.method === 'POST') {
      let raw = await readBody(req);
      if (String(req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
        try {
          raw = gunzipSync(raw);
        } catch {
          throw new HttpProblem(400, { code: 'invalid_parameter', message: 'could not decompress the body' });
        }
      }
      if (/yaml/i.test(String(req.headers['content-type'] ?? ''))) {
        throw new HttpProblem(400, {
          code: 'invalid_parameter',
          message: 'YAML request bodies are not supported by the @amas/opa test server',
        });
      }
      const text = raw.toString('utf8');
      if (text.trim() === '') {
        warn = true;
      } else {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch (err) {
          throw new HttpProblem(400, {
            code: 'invalid_parameter',
            message: `body contains malformed input document: ${(err as Error).message}`,
          });
        }
        if (!isObject(body)) {
          throw new HttpProblem(400, {
            code: 'invalid_parameter',
            message: 'body contains malformed input document: the request body must be a JSON object',
          });
        }
        if (Object.hasOwn(body, 'input')) input = body.input;
        else warn = true;
      }
    } else {
      const given = q.getAll('input');
      if (given.length > 0) {
        try {
          input = JSON.parse(given[given.length - 1] as string);
        } catch (err) {
          throw new HttpProblem(400, { code: 'invalid_parameter', message: (err as Error).message });
        }
      }
    }
    const fault = takeFault();
    if (fault) {
      await applyFault(fault, req, res);
      return;
    }
    const value = resolveDoc(segments, input, flag('strict-builtin-errors'));
    const body: Record<string, unknown> = {};
    if (decisionIds) body.decision_id = randomUUID();
    if (flag('provenance')) {
      body.provenance = {
        version: '1.0.0-amas-test',
        build_commit: 'amas-test',
        build_timestamp: '2026-01-01T00:00:00Z',
        build_hostname: 'amas-test-server',
        ...(options.bundles
          ? {
              bundles: Object.fromEntries(
                Object.entries(options.bundles).map(([k, v]) => [k, { revision: v }]),
              ),
            }
          : {}),
      };
    }
    if (flag('metrics') || flag('instrument')) {
      body.metrics = { timer_rego_query_eval_ns: 1000, timer_server_handler_ns: 2000 };
    }
    if (q.has('explain') && q.get('explain') !== 'off') body.explanation = [];
    if (value !== undefined) body.result = value;
    if (warn) body.warning = { code: 'api_usage_warning', message: "'input' key missing from the request" };
    send(req, res, 200, body, flag('pretty'));
  };

  // POST /: the body is the input itself, the answer is the bare value of data.system.main,
  // and an undefined decision is a 404 (unlike the v1 Data API).
  const defaultDecision = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const text = (await readBody(req)).toString('utf8');
    let input: unknown;
    if (text.trim() !== '') {
      try {
        input = JSON.parse(text);
      } catch (err) {
        throw new HttpProblem(400, {
          code: 'invalid_parameter',
          message: `body contains malformed input document: ${(err as Error).message}`,
        });
      }
    }
    const fault = takeFault();
    if (fault) return applyFault(fault, req, res);
    const value = resolveDoc(['system', 'main'], input, false);
    if (value === undefined) {
      return send(req, res, 404, {
        code: 'undefined_document',
        message: 'document missing or undefined: data.system.main',
      });
    }
    return send(req, res, 200, value);
  };

  const applyFault = (
    fault: TestFault,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> => {
    switch (fault.kind) {
      case 'slow':
        return new Promise((resolve) => {
          const t = setTimeout(() => {
            timers.delete(t);
            if (!res.destroyed)
              send(req, res, 200, { result: { allow: true, escalate: false, reasons: [] } });
            resolve();
          }, fault.delayMs ?? 5_000);
          timers.add(t);
        });
      case 'error500':
        send(req, res, 500, {
          code: 'internal_error',
          message: 'error(s) occurred while evaluating query',
          errors: [
            {
              code: 'eval_conflict_error',
              message: 'complete rules must not produce multiple outputs',
              location: { file: 'policy.rego', row: 4, col: 1 },
            },
          ],
        });
        break;
      case 'error400':
        send(req, res, 400, { code: 'invalid_parameter', message: 'body contains malformed input document' });
        break;
      case 'garbage':
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('<html>502 Bad Gateway</html>{"result":tru');
        break;
      case 'reset': {
        const body = JSON.stringify({ result: { allow: true, escalate: false, reasons: [] } });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
        res.write(body.slice(0, Math.floor(body.length / 2)), () => {
          req.socket.resetAndDestroy();
        });
        break;
      }
      case 'wrong_shape':
        send(req, res, 200, { decision_id: randomUUID(), result: 'yes' });
        break;
      case 'huge': {
        const size = fault.bytes ?? 2 * 1024 * 1024;
        const filler = 'x'.repeat(Math.max(0, size - 40));
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(`{"result":{"allow":true,"pad":"${filler}"}}`);
        break;
      }
      default:
        break;
    }
    return Promise.resolve();
  };

  const healthAnswer = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const q = url.searchParams;
    const flag = (name: string) => q.has(name) && q.get(name) !== 'false';
    if (url.pathname === '/health/live' || url.pathname === '/health/ready') {
      const which = url.pathname.slice('/health/'.length) as 'live' | 'ready';
      const v = health[which];
      if (v === true) return send(req, res, 200, {});
      return send(req, res, 500, {
        error:
          v === undefined
            ? `health check (data.system.health.${which}) was undefined`
            : `health check (data.system.health.${which}) returned unexpected value`,
      });
    }
    if ((flag('bundles') || flag('bundle')) && !health.bundlesReady) {
      return send(req, res, 500, { error: 'one or more bundles are not activated' });
    }
    if (flag('plugins')) {
      const excluded = new Set(q.getAll('exclude-plugin'));
      if (Object.entries(health.plugins).some(([name, state]) => !excluded.has(name) && state !== 'OK')) {
        return send(req, res, 500, { error: 'one or more plugins are not up' });
      }
    }
    return send(req, res, 200, {});
  };

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      const url = new URL(req.url ?? '/', 'http://opa.test');
      if (url.pathname === '/health' || url.pathname.startsWith('/health/')) {
        stats.health++;
        if (req.method !== 'GET')
          return send(req, res, 405, { code: 'invalid_parameter', message: 'method not allowed' });
        return healthAnswer(req, res, url);
      }
      if (url.pathname === '/v1/data' || url.pathname.startsWith('/v1/data/')) {
        stats.data++;
        lastHeaders = req.headers;
        if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
          return send(req, res, 401, {
            code: 'unauthorized',
            message: 'request rejected by administrative policy',
          });
        }
        const rawPath = (req.url ?? '').split('?')[0]?.slice('/v1/data'.length) ?? '';
        const segments = rawPath
          .split('/')
          .filter((s) => s !== '')
          .map((s) => decodeURIComponent(s));
        if (req.method === 'POST' || req.method === 'GET') return await dataAnswer(req, res, url, segments);
        if (req.method === 'PUT') {
          const text = (await readBody(req)).toString('utf8');
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch (err) {
            return send(req, res, 400, { code: 'invalid_parameter', message: (err as Error).message });
          }
          if (segments.length === 0) {
            if (!isObject(value))
              return send(req, res, 400, { code: 'invalid_parameter', message: 'root must be an object' });
            data = value;
          } else {
            let node = data;
            for (const k of segments.slice(0, -1)) {
              if (!isObject(own(node, k))) setOwn(node, k, {});
              node = node[k] as Record<string, unknown>;
            }
            const last = segments[segments.length - 1] as string;
            if (req.headers['if-none-match'] === '*' && Object.hasOwn(node, last)) {
              res.writeHead(304).end();
              return;
            }
            setOwn(node, last, value);
          }
          res.writeHead(204).end();
          return;
        }
        if (req.method === 'DELETE') {
          let node: unknown = data;
          for (const k of segments.slice(0, -1)) node = isObject(node) ? own(node, k) : undefined;
          const last = segments[segments.length - 1];
          if (last === undefined || !isObject(node) || !Object.hasOwn(node, last)) {
            return send(req, res, 404, {
              code: 'resource_not_found',
              message: `storage_not_found_error: /${segments.join('/')}: document does not exist`,
            });
          }
          delete node[last];
          res.writeHead(204).end();
          return;
        }
        return send(req, res, 405, { code: 'method_not_allowed', message: 'method not allowed' });
      }
      if (url.pathname === '/' && req.method === 'POST') {
        stats.data++;
        lastHeaders = req.headers;
        return await defaultDecision(req, res);
      }
      return send(req, res, 404, {
        code: 'resource_not_found',
        message: 'the @amas/opa test server serves /, /v1/data and /health only',
      });
    } catch (err) {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof HttpProblem) return send(req, res, err.status, err.body);
      return send(req, res, 500, {
        code: 'internal_error',
        message: err instanceof Error ? err.message : 'error',
      });
    }
  };

  const server = http.createServer((req, res) => {
    void handler(req, res);
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });

  const port = await listen(options.port ?? 0);
  const url = `http://${host}:${port}`;

  return {
    url,
    port,
    async fault(fault) {
      const wasDown = current?.kind === 'down';
      current = fault;
      remaining =
        fault && 'times' in fault && fault.times !== undefined ? fault.times : Number.POSITIVE_INFINITY;
      if (fault?.kind === 'down' && !wasDown) await stop();
      if (fault?.kind !== 'down' && wasDown) await listen(port);
    },
    stats: () => ({ ...stats }),
    resetStats() {
      stats = { data: 0, health: 0 };
    },
    lastHeaders: () => lastHeaders,
    setHealth(h) {
      health = {
        bundlesReady: h.bundlesReady ?? health.bundlesReady,
        plugins: h.plugins ?? health.plugins,
        live: h.live ?? health.live,
        ready: h.ready ?? health.ready,
      };
    },
    setData(d) {
      data = structuredClone(d);
    },
    close: stop,
  };
}
