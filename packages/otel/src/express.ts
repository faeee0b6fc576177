import { context } from '@opentelemetry/api';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { isTelemetryError } from './errors.js';
import { expressRoute } from './express-route.js';
import { createRequestTracer, noteRequestError, type RequestReader, traceOf } from './request-tracer.js';
import type { RequestTelemetry, TraceRequestsOptions } from './types.js';

declare global {
  namespace Express {
    interface Request {
      /** Request state of the AMAS packages; `@amas/otel` sets `amas.otel`. */
      amas?: AmasRequestState;
    }
  }
  /** Request state shared by the AMAS packages, each under its own key (see docs/adr/0014). */
  interface AmasRequestState {
    /** The request's span, trace id, sampling decision and request id, set by `traceRequests()` of `@amas/otel`. */
    otel?: RequestTelemetry;
  }
}

const reader: RequestReader<Request> = {
  method: (req) => req.method,
  url: (req) => req.originalUrl ?? req.url,
  headers: (req) => req.headers,
  httpVersion: (req) => req.httpVersion,
  // `req.protocol` consults the trust-proxy setting, which only matters when X-Forwarded-Proto is sent.
  scheme: (req) =>
    req.headers['x-forwarded-proto'] === undefined
      ? (req.socket as { encrypted?: boolean }).encrypted
        ? 'https'
        : 'http'
      : req.protocol,
};

/**
 * Express middleware (4 and 5) that makes the server span of each request, with the stable HTTP semantic
 * conventions (`http.request.method`, `url.path`, `url.scheme`, `server.address`, `http.route` from the
 * matched route template, nested routers included, `http.response.status_code`), continues the caller's
 * W3C `traceparent`, marks 5xx responses as errors and records the `x-request-id`. Spans started while
 * handling the request nest under it. Health checks are ignored by default. When the `http`
 * auto-instrumentation already made the server span, it enriches that span instead of making a second one;
 * mounted twice on the way of one request (an app and a sub-app or router), the second is a pass-through.
 * Mount it first. The request's telemetry is on `req.amas.otel` (see {@link requestTelemetry}).
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { setupTelemetry } from '@amas/otel';
 * import { recordErrors, traceRequests } from '@amas/otel/express';
 *
 * setupTelemetry({ serviceName: 'orchestrator' });
 * const app = express();
 * app.use(traceRequests({ ignore: ['/healthz'] }));
 * app.use('/api', apiRouter);
 * app.use(recordErrors());
 * ```
 */
export function traceRequests(options: TraceRequestsOptions = {}): RequestHandler {
  const tracer = createRequestTracer(options, reader);
  return function amasTraceRequests(req, res, next) {
    // Already traced by a traceRequests() mounted before this one: its context is the active one.
    if (req.amas?.otel !== undefined) return next();
    const state = tracer.start(req);
    const telemetry = state.telemetry;
    if (telemetry !== undefined) {
      req.amas ??= {};
      req.amas.otel = telemetry;
      if (telemetry.span.isRecording()) {
        // `finish` comes before the auto-instrumentation ends its span on `close`.
        res.on(state.mode === 'own' ? 'close' : 'finish', () =>
          tracer.finish(
            state,
            res.headersSent ? res.statusCode : undefined,
            expressRoute(req),
            res.writableEnded,
          ),
        );
      }
    }
    if (state.context === undefined) next();
    else context.with(state.context, next);
  };
}

/**
 * Express error middleware that records an error on the request's server span (an exception event, and
 * `error.type` if the response is a 5xx) and passes it on unchanged. Mount it after your routes.
 *
 * @example
 * ```ts
 * app.use(traceRequests());
 * app.use(routes);
 * app.use(recordErrors());
 * ```
 */
export function recordErrors(): ErrorRequestHandler {
  return (err, req, _res, next) => {
    noteRequestError(traceOf(req.amas?.otel), err);
    next(err);
  };
}

/**
 * The telemetry `traceRequests()` put on the request: its span, trace id, sampling decision and request
 * id (for logs), or `undefined` for an ignored or untraced request.
 *
 * @example
 * ```ts
 * app.get('/tools/:name', (req, res) => {
 *   logger.info({ traceId: requestTelemetry(req)?.traceId }, 'running tool');
 * });
 * ```
 */
export function requestTelemetry(req: Request): RequestTelemetry | undefined {
  return req.amas?.otel;
}

/**
 * Express error middleware that answers a `TelemetryError` with its status, headers and
 * `{ error, message }` body, and passes every other error on unchanged.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/otel/express';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isTelemetryError(err) || res.headersSent) return next(err);
    res.status(err.status).set(err.headers).json(err.toJSON());
  };
}
