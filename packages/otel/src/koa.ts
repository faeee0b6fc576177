import { context } from '@opentelemetry/api';
import type { Context, Middleware } from 'koa';
import { isTelemetryError } from './errors.js';
import { createRequestTracer, noteRequestError, type RequestReader, traceOf } from './request-tracer.js';
import type { RequestTelemetry, TraceRequestsOptions } from './types.js';

declare global {
  /** Request state shared by the AMAS packages, each under its own key (see docs/adr/0014). */
  interface AmasRequestState {
    /** The request's span, trace id, sampling decision and request id, set by `traceRequests()` of `@amas/otel`. */
    otel?: RequestTelemetry;
  }
}

declare module 'koa' {
  interface DefaultState {
    /** Request state of the AMAS packages; `@amas/otel` sets `amas.otel`. */
    amas?: AmasRequestState;
  }
}

type State = { amas?: AmasRequestState };

const reader: RequestReader<Context> = {
  method: (ctx) => ctx.method,
  url: (ctx) => ctx.originalUrl,
  headers: (ctx) => ctx.req.headers,
  httpVersion: (ctx) => ctx.req.httpVersion,
  scheme: (ctx) => ctx.protocol,
};

/**
 * Koa middleware (2 and 3) that makes the server span of each request, with the stable HTTP semantic
 * conventions (`http.request.method`, `url.path`, `url.scheme`, `server.address`, `http.route` from the
 * `@koa/router` route template, nested routers included, `http.response.status_code`), continues the
 * caller's W3C `traceparent`, records exceptions thrown downstream and marks 5xx responses as errors,
 * and records the `x-request-id`. Spans started downstream nest under it. Health checks are ignored by
 * default. When the `http` auto-instrumentation already made the server span, it enriches that span
 * instead of making a second one; mounted twice on the way of one request (an app and a mounted
 * sub-app or router), the second is a pass-through. Mount it first. The request's telemetry is on
 * `ctx.state.amas.otel`.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { setupTelemetry } from '@amas/otel';
 * import { traceRequests } from '@amas/otel/koa';
 *
 * setupTelemetry({ serviceName: 'ai-router' });
 * const app = new Koa();
 * app.use(traceRequests());
 * app.use(router.routes());
 * ```
 */
export function traceRequests(options: TraceRequestsOptions = {}): Middleware {
  const tracer = createRequestTracer(options, reader);
  return function amasTraceRequests(ctx, next) {
    // Already traced by a traceRequests() mounted before this one: its context is the active one.
    if ((ctx.state as State).amas?.otel !== undefined) return next();
    const state = tracer.start(ctx);
    const telemetry = state.telemetry;
    if (telemetry === undefined || !telemetry.span.isRecording()) {
      if (telemetry !== undefined) expose(ctx, telemetry);
      return state.context === undefined ? next() : context.with(state.context, next);
    }
    expose(ctx, telemetry);
    const res = ctx.res;
    // `finish` comes before the auto-instrumentation ends its span on `close`.
    res.on(state.mode === 'own' ? 'close' : 'finish', () =>
      tracer.finish(state, res.headersSent ? res.statusCode : undefined, koaRoute(ctx), res.writableEnded),
    );
    // Koa hands every error that escapes the middleware to `ctx.onerror`; hooking it there records the
    // exception without wrapping the chain in one more promise per request.
    ctx.onerror = onerrorWithTrace;
    return state.context === undefined ? next() : context.with(state.context, next);
  };
}

function onerrorWithTrace(this: Context, err: unknown): void {
  if (err !== null && err !== undefined) noteRequestError(traceOf(requestTelemetry(this)), err);
  (Object.getPrototypeOf(this) as Context).onerror.call(this, err as Error);
}

/**
 * The telemetry `traceRequests()` put on `ctx.state.amas.otel`: span, trace id, sampling decision and
 * request id (for logs), or `undefined` for an ignored or untraced request.
 *
 * @example
 * ```ts
 * router.get('/tools/:name', (ctx) => {
 *   logger.info({ traceId: requestTelemetry(ctx)?.traceId }, 'running tool');
 * });
 * ```
 */
export function requestTelemetry(ctx: Context): RequestTelemetry | undefined {
  return (ctx.state as State).amas?.otel;
}

/**
 * Koa middleware that answers a `TelemetryError` thrown further down with its status, headers and
 * `{ error, message }` body, and rethrows every other error unchanged.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/otel/koa';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isTelemetryError(err)) throw err;
      ctx.status = err.status;
      ctx.set(err.headers);
      ctx.body = err.toJSON();
    }
  };
}

function expose(ctx: Context, telemetry: RequestTelemetry): void {
  const state = ctx.state as State;
  state.amas ??= {};
  state.amas.otel = telemetry;
}

function koaRoute(ctx: Context): string | undefined {
  const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  return typeof route === 'string' ? route : undefined;
}
