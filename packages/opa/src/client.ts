import http from 'node:http';
import https from 'node:https';
import { gunzipSync } from 'node:zlib';
import { OpaError } from './errors.js';
import { canonicalJson } from './hash.js';
import {
  type ClientOptionsInput,
  clientOptionsSchema,
  parseOptions,
  type ResolvedClientOptions,
} from './options.js';
import type { HealthStatus, OpaErrorDetail, OpaResponse, Provenance, UnavailableCause } from './types.js';

/**
 * A low-level client for OPA's Data API and Health API: keep-alive connections, a deadline per
 * call, bounded retries where they are safe, a response size cap. It never throws for OPA's
 * failures: they come back as `{ ok: false, cause }`.
 *
 * @example
 * ```ts
 * const client = createOpaClient({ url: 'http://127.0.0.1:8181', timeoutMs: 200 });
 * const r = await client.evaluate('amas/tool_access/decision', input);
 * ```
 */
export interface OpaClient {
  /** The resolved, frozen options. */
  readonly options: Readonly<Omit<ResolvedClientOptions, 'token' | 'ca'>>;
  /** `POST /v1/data/{path}` with `{ "input": input }`. */
  evaluate(path: string, input: unknown): Promise<OpaResponse>;
  /** Same, with the input already serialized as JSON text (saves a second serialization). */
  evaluateJson(path: string, inputJson: string): Promise<OpaResponse>;
  /** `GET /health`, optionally with `bundles`, `plugins` and `exclude-plugin`. */
  health(options?: {
    bundles?: boolean;
    plugins?: boolean;
    excludePlugins?: string[];
  }): Promise<HealthStatus>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN']);
const RETRYABLE_STATUS = new Set([502, 503, 504]);
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * Checks and normalizes a Data API path (`a/b/c`, with or without a leading slash or `v1/data/`).
 * Throws {@link OpaError} `input_invalid` for anything else, so that no caller-controlled text can
 * reach another endpoint.
 *
 * @example
 * ```ts
 * normalizePath('/amas/tool_access/decision'); // 'amas/tool_access/decision'
 * ```
 */
export function normalizePath(path: string): string {
  if (typeof path !== 'string') throw new OpaError('input_invalid', 'the policy path must be a string');
  const trimmed = path.replace(/^\/+/, '').replace(/^v1\/data\/?/, '');
  const segments = trimmed === '' ? [] : trimmed.split('/');
  if (segments.length === 0 || !segments.every((s) => SEGMENT.test(s))) {
    throw new OpaError('input_invalid', 'the policy path must be slash-separated [A-Za-z0-9_-] segments');
  }
  return segments.join('/');
}

function cause(kind: UnavailableCause['kind'], message: string, extra: Partial<UnavailableCause> = {}) {
  return { ok: false as const, cause: Object.freeze({ kind, message, ...extra }) };
}

interface Attempt {
  response: OpaResponse;
  retryable: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readErrorBody(text: string): Pick<UnavailableCause, 'code' | 'errors'> & { message?: string } {
  try {
    const body: unknown = JSON.parse(text);
    if (!isObject(body)) return {};
    const out: { code?: string; message?: string; errors?: OpaErrorDetail[] } = {};
    if (typeof body.code === 'string') out.code = body.code.slice(0, 100);
    if (typeof body.message === 'string') out.message = body.message.slice(0, 500);
    if (Array.isArray(body.errors)) {
      out.errors = body.errors
        .filter((e): e is Record<string, unknown> => isObject(e))
        .slice(0, 10)
        .map((e) => ({
          code: String(e.code ?? ''),
          message: String(e.message ?? '').slice(0, 500),
          ...(isObject(e.location)
            ? {
                location: {
                  file: String(e.location.file ?? ''),
                  row: Number(e.location.row ?? 0),
                  col: Number(e.location.col ?? 0),
                },
              }
            : {}),
        }));
    }
    return out;
  } catch {
    return {};
  }
}

function readDataBody(text: string): OpaResponse {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return cause('malformed', 'OPA answered 200 with a body that is not JSON');
  }
  if (!isObject(body)) return cause('malformed', 'OPA answered 200 with a body that is not a JSON object');
  const decisionId = typeof body.decision_id === 'string' ? body.decision_id : undefined;
  const provenance = isObject(body.provenance) ? (body.provenance as Provenance) : undefined;
  const warning =
    isObject(body.warning) && typeof body.warning.code === 'string'
      ? { code: body.warning.code, message: String(body.warning.message ?? '') }
      : undefined;
  const defined = Object.hasOwn(body, 'result');
  return {
    ok: true,
    defined,
    ...(defined ? { result: body.result } : {}),
    ...(decisionId ? { decisionId } : {}),
    ...(provenance ? { provenance } : {}),
    ...(warning ? { warning } : {}),
  };
}

/**
 * Creates a {@link OpaClient}. Options are validated once; a bad option throws {@link OpaError}
 * `config_invalid` naming it.
 *
 * @example
 * ```ts
 * const client = createOpaClient({
 *   url: 'https://opa.internal:8181',
 *   token: () => readFileSync('/run/secrets/opa-token', 'utf8').trim(),
 *   timeoutMs: 150,
 *   provenance: true,
 * });
 * ```
 */
export function createOpaClient(options: ClientOptionsInput): OpaClient {
  const resolved = parseOptions(clientOptionsSchema, options, 'createOpaClient');
  const base = new URL(resolved.url);
  const isHttps = base.protocol === 'https:';
  const transport = isHttps ? https : http;
  const agent = isHttps
    ? new https.Agent({
        keepAlive: true,
        maxSockets: resolved.maxSockets,
        ...(resolved.ca ? { ca: resolved.ca } : {}),
      })
    : new http.Agent({ keepAlive: true, maxSockets: resolved.maxSockets });
  const basePath = base.pathname.replace(/\/+$/, '');
  const dataQuery = resolved.provenance ? '?provenance' : '';
  const fixedHeaders: Record<string, string> = { ...resolved.headers };
  const token = resolved.token;
  const { token: _t, ca: _ca, ...publicOptions } = resolved;
  const frozen = Object.freeze({ ...publicOptions, headers: Object.freeze({ ...resolved.headers }) });

  async function authHeader(): Promise<string | undefined> {
    if (token === undefined) return undefined;
    const value = typeof token === 'string' ? token : await token();
    if (typeof value === 'string' && INVALID_HEADER_VALUE.test(value)) {
      throw new TypeError('the token holds characters a header cannot carry');
    }
    return value ? `Bearer ${value}` : undefined;
  }

  function once(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    deadline: number,
    authorization: string | undefined,
    read: (status: number, text: string) => Attempt,
  ): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let gotResponse = false;
      const headers: Record<string, string> = { ...fixedHeaders, accept: 'application/json' };
      if (authorization) headers.authorization = authorization;
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(Buffer.byteLength(body));
      }
      const req = transport.request({
        protocol: base.protocol,
        hostname: base.hostname.replace(/^\[|\]$/g, ''),
        port: base.port,
        method,
        path: basePath + path,
        headers,
        agent,
      });
      const finish = (attempt: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(attempt);
      };
      const timer = setTimeout(
        () => {
          finish({
            response: cause('timeout', `no complete answer from OPA within ${resolved.timeoutMs} ms`),
            retryable: false,
          });
          req.destroy();
        },
        Math.max(1, deadline - Date.now()),
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'ERROR';
        finish({
          response: gotResponse
            ? cause('malformed', `OPA closed the connection in the middle of its answer (${code})`)
            : cause('down', `OPA unreachable (${code})`),
          retryable: !gotResponse && RETRYABLE_CODES.has(code),
        });
      });
      req.on('response', (res) => {
        gotResponse = true;
        const status = res.statusCode ?? 0;
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > resolved.maxResponseBytes) {
          finish({
            response: cause('too_large', `OPA's answer declares ${declared} bytes, over maxResponseBytes`),
            retryable: false,
          });
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > resolved.maxResponseBytes) {
            finish({
              response: cause(
                'too_large',
                `OPA's answer exceeds maxResponseBytes (${resolved.maxResponseBytes})`,
              ),
              retryable: false,
            });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', () => {
          finish({
            response: cause('malformed', 'OPA closed the connection in the middle of its answer'),
            retryable: false,
          });
        });
        res.on('close', () => {
          if (!res.complete) {
            finish({
              response: cause('malformed', 'OPA closed the connection in the middle of its answer'),
              retryable: false,
            });
          }
        });
        res.on('end', () => {
          if (settled) return;
          let raw = Buffer.concat(chunks);
          if (String(res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
            try {
              raw = gunzipSync(raw, { maxOutputLength: resolved.maxResponseBytes });
            } catch {
              finish({
                response: cause(
                  'malformed',
                  'OPA sent a gzip body that cannot be decompressed within the cap',
                ),
                retryable: false,
              });
              return;
            }
          }
          finish(read(status, raw.toString('utf8')));
        });
      });
      req.end(body);
    });
  }

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    read: (status: number, text: string) => Attempt,
  ): Promise<OpaResponse> {
    const deadline = Date.now() + resolved.timeoutMs;
    let authorization: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A token function that hangs must not hold the decision past its deadline.
      authorization = await Promise.race([
        authHeader(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), resolved.timeoutMs);
        }),
      ]);
    } catch {
      return cause('down', 'the token function for OPA failed or did not answer in time');
    } finally {
      clearTimeout(timer);
    }
    let attempt = await once(method, path, body, deadline, authorization, read);
    for (let i = 0; i < resolved.retries && attempt.retryable; i++) {
      const wait = resolved.retryBackoffMs * 2 ** i;
      if (Date.now() + wait >= deadline) break;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      attempt = await once(method, path, body, deadline, authorization, read);
    }
    return attempt.response;
  }

  const readData = (status: number, text: string): Attempt => {
    if (status === 200) return { response: readDataBody(text), retryable: false };
    const err = readErrorBody(text);
    return {
      response: cause('http_error', err.message ?? `OPA answered ${status}`, {
        status,
        ...(err.code ? { code: err.code } : {}),
        ...(err.errors ? { errors: err.errors } : {}),
      }),
      retryable: RETRYABLE_STATUS.has(status),
    };
  };

  function evaluateJson(path: string, inputJson: string): Promise<OpaResponse> {
    const normalized = normalizePath(path);
    return call('POST', `/v1/data/${normalized}${dataQuery}`, `{"input":${inputJson}}`, readData);
  }

  return Object.freeze({
    options: frozen,
    evaluateJson,
    evaluate(path: string, input: unknown) {
      return evaluateJson(path, canonicalJson(input));
    },
    async health(opts: { bundles?: boolean; plugins?: boolean; excludePlugins?: string[] } = {}) {
      const q = new URLSearchParams();
      if (opts.bundles) q.append('bundles', 'true');
      if (opts.plugins) q.append('plugins', 'true');
      for (const p of opts.excludePlugins ?? []) q.append('exclude-plugin', p);
      const qs = q.toString();
      const r = await call('GET', `/health${qs ? `?${qs}` : ''}`, undefined, (status, text) => {
        if (status === 200)
          return { response: { ok: true, defined: true, result: status }, retryable: false };
        let error = `OPA answered ${status}`;
        try {
          const b: unknown = JSON.parse(text);
          if (isObject(b) && typeof b.error === 'string') error = b.error.slice(0, 500);
        } catch {
          // not JSON: keep the status text
        }
        return { response: cause('http_error', error, { status }), retryable: false };
      });
      if (r.ok) return { healthy: true, status: 200 };
      return {
        healthy: false,
        ...(r.cause.status ? { status: r.cause.status } : {}),
        error: r.cause.message,
      };
    },
    close() {
      agent.destroy();
    },
  });
}
