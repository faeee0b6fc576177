import type { IncomingHttpHeaders } from 'node:http';
import {
  type Context,
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { getRPCMetadata, isTracingSuppressed, RPCType, suppressTracing } from '@opentelemetry/core';
import { matchesPath, pathOf } from './instrumentations.js';
import { DEFAULT_IGNORE_PATHS, parseTraceRequestsOptions } from './options.js';
import { amasTracer, samplerFollowsParent } from './tracer.js';
import type { RequestTelemetry, TraceRequestsOptions } from './types.js';

/**
 * How an adapter reads its framework's request object: the core sees plain values only. A set of static
 * functions rather than a per-request object, so that reading costs no allocation.
 */
export interface RequestReader<Req> {
  method(req: Req): string | undefined;
  /** Path and query as received (`req.originalUrl` in Express, `ctx.originalUrl` in Koa). */
  url(req: Req): string | undefined;
  headers(req: Req): IncomingHttpHeaders;
  httpVersion(req: Req): string | undefined;
  /** `http` or `https` as the framework sees it (proxy settings included); read only for recorded spans. */
  scheme(req: Req): string;
}

/** The state of one request between {@link RequestTracer.start} and {@link RequestTracer.finish}. */
export interface RequestTrace {
  /** `own`: our server span; `upstream`: an auto-instrumentation's span we enrich; `none`: nothing to end. */
  readonly mode: 'own' | 'upstream' | 'none';
  /** The context the rest of the request must run in, or `undefined` to keep the current one. */
  readonly context: Context | undefined;
  /** What adapters expose on the request; `undefined` for ignored requests. */
  readonly telemetry: RequestTelemetry | undefined;
  readonly method: string;
  /** The auto-instrumentation's request metadata, whose `route` names its span. */
  readonly rpc: { route?: string } | undefined;
  errorType: string | undefined;
}

export interface RequestTracer<Req> {
  start(req: Req): RequestTrace;
  /**
   * Ends the request: route, status code, span status; ends our span. `completed` is false when the
   * response was cut off (the connection closed before it ended): an exception noted on the way then makes
   * the span an error even though a 2xx status line went out.
   */
  finish(
    state: RequestTrace,
    statusCode: number | undefined,
    route: string | undefined,
    completed?: boolean,
  ): void;
}

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_PATH = 2048;
const MAX_HOST = 255;
const IGNORED: RequestTrace = Object.freeze({
  mode: 'none',
  context: undefined,
  telemetry: undefined,
  method: '',
  rpc: undefined,
  errorType: undefined,
});

/**
 * The framework-free core of the `traceRequests()` middleware: W3C trace-context extraction, a server span
 * with the stable HTTP semantic conventions, request-id correlation, and the ignore list. When an
 * auto-instrumentation already made the server span of this request, it enriches that span instead of
 * making a second one.
 */
export function createRequestTracer<Req>(
  options: TraceRequestsOptions | undefined,
  read: RequestReader<Req>,
): RequestTracer<Req> {
  const opts = parseTraceRequestsOptions(options);
  const ignore = opts.ignore ?? DEFAULT_IGNORE_PATHS;
  const isIgnored = typeof ignore === 'function' ? safePredicate(ignore) : pathMatcher(ignore);
  // Node.js lower-cases the names of incoming headers.
  const requestIdHeader =
    opts.requestIdHeader === false ? undefined : (opts.requestIdHeader ?? 'x-request-id').toLowerCase();
  const recordPath = opts.recordPath ?? true;
  const fixedTracer = opts.tracer as Tracer | undefined;

  function start(req: Req): RequestTrace {
    const rawMethod = read.method(req) ?? 'GET';
    const method = KNOWN_METHODS.has(rawMethod) ? rawMethod : '_OTHER';
    const path = pathOf(read.url(req) ?? '/');
    const headers = read.headers(req);
    const active = context.active();
    const rpc = getRPCMetadata(active);
    if (isIgnored(path, rawMethod)) {
      // Under an auto-instrumentation, its own ignore list decides; otherwise nothing below is traced.
      return rpc === undefined ? { ...IGNORED, context: suppressTracing(active) } : IGNORED;
    }
    // Tracing was suppressed around this request (an outer traceRequests() ignored it): nothing to make.
    if (rpc === undefined && isTracingSuppressed(active)) return IGNORED;

    if (rpc?.type === RPCType.HTTP && rpc.span !== undefined) {
      const span = rpc.span;
      const telemetry = telemetryOf(span, readRequestId(headers));
      if (span.isRecording() && telemetry.requestId !== telemetry.traceId) {
        span.setAttribute('amas.otel.request_id', telemetry.requestId);
      }
      return link({ mode: 'upstream', context: undefined, telemetry, method, rpc, errorType: undefined });
    }

    const parent = hasPropagationFields(headers) ? propagation.extract(ROOT_CONTEXT, headers) : ROOT_CONTEXT;
    const tracer = fixedTracer ?? amasTracer();
    const requestId = readRequestId(headers);
    if (parent !== ROOT_CONTEXT && fixedTracer === undefined && samplerFollowsParent()) {
      const caller = trace.getSpan(parent);
      const sc = caller?.spanContext();
      if (
        caller !== undefined &&
        sc !== undefined &&
        (sc.traceFlags & TraceFlags.SAMPLED) === 0 &&
        isSpanContextValid(sc)
      ) {
        // The caller did not sample this trace and our sampler follows it: nothing to record, only to pass on.
        return link({
          mode: 'own',
          context: parent,
          telemetry: telemetryOf(caller, requestId),
          method,
          rpc: undefined,
          errorType: undefined,
        });
      }
    }
    const span = tracer.startSpan(method === '_OTHER' ? 'HTTP' : method, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      span.setAttribute('http.request.method', method);
      if (method === '_OTHER') span.setAttribute('http.request.method_original', rawMethod);
      if (recordPath) span.setAttribute('url.path', path.length > MAX_PATH ? path.slice(0, MAX_PATH) : path);
      span.setAttribute('url.scheme', read.scheme(req));
      const host = headers.host;
      if (host !== undefined) setServerAddress(span, host);
      const version = read.httpVersion(req);
      if (version !== undefined) span.setAttribute('network.protocol.version', version);
      if (requestId !== undefined) span.setAttribute('amas.otel.request_id', requestId);
    }
    return link({
      mode: 'own',
      context: trace.setSpan(parent, span),
      telemetry: telemetryOf(span, requestId),
      method,
      rpc: undefined,
      errorType: undefined,
    });
  }

  function finish(
    state: RequestTrace,
    statusCode: number | undefined,
    route: string | undefined,
    completed = true,
  ): void {
    const span = state.telemetry?.span;
    if (span === undefined || !span.isRecording()) return;
    if (route !== undefined) {
      span.setAttribute('http.route', route);
      if (state.rpc !== undefined) state.rpc.route = route;
      span.updateName(state.method === '_OTHER' ? `HTTP ${route}` : `${state.method} ${route}`);
    }
    if (state.mode !== 'own') return;
    if (statusCode !== undefined) {
      span.setAttribute('http.response.status_code', statusCode);
      if (statusCode >= 500) {
        span.setAttribute('error.type', state.errorType ?? String(statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      } else if (!completed && state.errorType !== undefined) {
        span.setAttribute('error.type', state.errorType);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    } else if (state.errorType !== undefined) {
      span.setAttribute('error.type', state.errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  function readRequestId(headers: IncomingHttpHeaders): string | undefined {
    if (requestIdHeader === undefined) return undefined;
    const value = headers[requestIdHeader];
    return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
  }

  return Object.freeze({ start, finish });
}

function pathMatcher(patterns: readonly (string | RegExp)[]): (path: string) => boolean {
  // A global or sticky pattern would carry `lastIndex` from one request to the next.
  const own = patterns.map((p) =>
    typeof p === 'string' ? p : new RegExp(p.source, p.flags.replace(/[gy]/g, '')),
  );
  return (path) => matchesPath(path, own);
}

function safePredicate(predicate: (path: string, method: string) => boolean) {
  return (path: string, method: string): boolean => {
    try {
      return predicate(path, method) === true;
    } catch {
      // A failing ignore predicate must not fail the request: the request is traced.
      return false;
    }
  };
}

/**
 * Notes an exception thrown while handling the request: an exception event on a recorded span, and the
 * `error.type` used if the response turns out to be a 5xx (a 4xx is not a server error).
 */
export function noteRequestError(state: RequestTrace | undefined, err: unknown): void {
  const span = state?.telemetry?.span;
  if (state === undefined || span === undefined || !span.isRecording()) return;
  try {
    if (err instanceof Error) {
      span.recordException(err);
      const code = (err as { code?: unknown }).code;
      state.errorType = typeof code === 'string' && code !== '' ? code : err.name;
    } else {
      state.errorType = typeof err;
    }
  } catch {
    // An error whose properties throw when read must not replace the application's error.
    state.errorType = 'Error';
  }
}

/**
 * The state travels on the telemetry object the adapters expose, not on the framework's request object:
 * every property added to an Express request (whose prototype Express swaps) costs microseconds.
 */
const TRACE_STATE = Symbol('@amas/otel/request-trace');

function link(state: RequestTrace): RequestTrace {
  (state.telemetry as { [TRACE_STATE]?: RequestTrace })[TRACE_STATE] = state;
  return state;
}

/** The state of the request whose telemetry this is (for recording errors later). */
export function traceOf(telemetry: RequestTelemetry | undefined): RequestTrace | undefined {
  return (telemetry as { [TRACE_STATE]?: RequestTrace } | undefined)?.[TRACE_STATE];
}

function telemetryOf(span: Span, requestId: string | undefined): RequestTelemetry {
  const sc = span.spanContext();
  return {
    span,
    traceId: sc.traceId,
    sampled: (sc.traceFlags & TraceFlags.SAMPLED) !== 0,
    requestId: requestId ?? sc.traceId,
  };
}

function hasPropagationFields(headers: IncomingHttpHeaders): boolean {
  for (const field of propagation.fields()) {
    if (headers[field] !== undefined) return true;
  }
  return false;
}

function setServerAddress(span: Span, host: string): void {
  if (host.length > MAX_HOST) return;
  let address = host;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    address = host.slice(0, close + 1);
    if (host[close + 1] === ':') port = host.slice(close + 2);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) {
      address = host.slice(0, colon);
      port = host.slice(colon + 1);
    }
  }
  span.setAttribute('server.address', address);
  const n = port === undefined ? Number.NaN : Number(port);
  if (Number.isInteger(n) && n > 0 && n < 65536) span.setAttribute('server.port', n);
}
