// The service under test, one process per measurement:
//   node otel-app.mjs <express|koa> <none|amas|official|floor|floor-bare> <ratio> <otlp traces url>
// Prints {"port"} when listening; on SIGTERM flushes, prints {"served","sampled"} (whole run) and
// {"measured","cpuMicros"} (since GET /__mark, the end of the warm-up, export flush included) and exits.
// Frameworks are loaded with require() after tracing starts, so that the official auto-instrumentation
// (require-in-the-middle) sees them: its best case.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const [framework, variant, ratioArg, url] = process.argv.slice(2);
const ratio = Number(ratioArg);
const api = require('@opentelemetry/api');

// Every traced variant runs with its own defaults (batch processor included): what a user gets.
let flush = async () => {};

if (variant === 'amas') {
  const { setupTelemetry } = await import('@amas/otel');
  const handle = setupTelemetry({
    serviceName: 'bench',
    tracesEndpoint: url,
    samplerRatio: ratio,
    logger: false,
    env: {},
  });
  flush = () => handle.shutdown();
} else if (variant.startsWith('floor') || variant === 'official') {
  const {
    NodeTracerProvider,
    BatchSpanProcessor,
    ParentBasedSampler,
    TraceIdRatioBasedSampler,
  } = require('@opentelemetry/sdk-trace-node');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = require('@opentelemetry/resources');
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench' }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
  });
  provider.register();
  flush = () => provider.shutdown();
  if (variant === 'official') {
    const { registerInstrumentations } = require('@opentelemetry/instrumentation');
    const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
    const framed =
      framework === 'express'
        ? new (require('@opentelemetry/instrumentation-express').ExpressInstrumentation)()
        : new (require('@opentelemetry/instrumentation-koa').KoaInstrumentation)();
    registerInstrumentations({ instrumentations: [new HttpInstrumentation(), framed] });
  }
}

let served = 0;
let sampled = 0;
let servedAtMark = 0;
let cpuMark = process.cpuUsage();
// GET /__mark ends the warm-up: CPU time per request counts from here (spans are counted from the start).
const mark = () => {
  servedAtMark = served;
  cpuMark = process.cpuUsage();
};
const count = () => {
  served++;
  if (api.trace.getActiveSpan()?.isRecording()) sampled++;
};
const tracer = api.trace.getTracer('bench-floor');
let server;

if (framework === 'express') {
  const express = require('express');
  const app = express();
  app.get('/__mark', (_req, res) => {
    mark();
    res.end();
  });
  if (variant === 'amas') app.use((await import('@amas/otel/express')).traceRequests());
  if (variant === 'floor-bare') {
    // The bare floor: one span per request through the API, context for children, status code.
    app.use((req, res, next) => {
      const parent = api.propagation.extract(api.ROOT_CONTEXT, req.headers);
      const span = tracer.startSpan(req.method, { kind: api.SpanKind.SERVER }, parent);
      res.on('close', () => {
        span.setAttribute('http.response.status_code', res.statusCode);
        span.end();
      });
      api.context.with(api.trace.setSpan(parent, span), next);
    });
  }
  if (variant === 'floor') {
    // The floor of the work: the same span as @amas/otel's (name, HTTP semantic conventions, route),
    // written by hand as directly as the API allows, attributes only when the span is recorded.
    app.use((req, res, next) => {
      const parent = api.propagation.extract(api.ROOT_CONTEXT, req.headers);
      const span = tracer.startSpan(req.method, { kind: api.SpanKind.SERVER }, parent);
      if (span.isRecording()) {
        span.setAttribute('http.request.method', req.method);
        span.setAttribute('url.path', req.path);
        span.setAttribute('url.scheme', req.protocol);
        span.setAttribute('server.address', req.hostname);
        span.setAttribute('server.port', req.socket.localPort);
        span.setAttribute('network.protocol.version', req.httpVersion);
        res.on('close', () => {
          if (req.route) {
            const route = req.baseUrl + req.route.path;
            span.setAttribute('http.route', route);
            span.updateName(`${req.method} ${route}`);
          }
          span.setAttribute('http.response.status_code', res.statusCode);
          if (res.statusCode >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
          span.end();
        });
      }
      api.context.with(api.trace.setSpan(parent, span), next);
    });
  }
  const api1 = express.Router();
  api1.get('/tools/:name', (req, res) => {
    count();
    res.json({ tool: req.params.name, ok: true });
  });
  app.use('/api', api1);
  server = app.listen(0, '127.0.0.1', ready);
} else {
  const Koa = require('koa');
  const { Router } = require('@koa/router');
  const app = new Koa();
  app.use((ctx, next) => {
    if (ctx.path !== '/__mark') return next();
    mark();
    ctx.body = '';
  });
  if (variant === 'amas') app.use((await import('@amas/otel/koa')).traceRequests());
  if (variant === 'floor-bare') {
    app.use((ctx, next) => {
      const parent = api.propagation.extract(api.ROOT_CONTEXT, ctx.req.headers);
      const span = tracer.startSpan(ctx.method, { kind: api.SpanKind.SERVER }, parent);
      ctx.res.on('close', () => {
        span.setAttribute('http.response.status_code', ctx.res.statusCode);
        span.end();
      });
      return api.context.with(api.trace.setSpan(parent, span), next);
    });
  }
  if (variant === 'floor') {
    app.use((ctx, next) => {
      const parent = api.propagation.extract(api.ROOT_CONTEXT, ctx.req.headers);
      const span = tracer.startSpan(ctx.method, { kind: api.SpanKind.SERVER }, parent);
      if (span.isRecording()) {
        span.setAttribute('http.request.method', ctx.method);
        span.setAttribute('url.path', ctx.path);
        span.setAttribute('url.scheme', ctx.protocol);
        span.setAttribute('server.address', ctx.hostname);
        span.setAttribute('server.port', ctx.req.socket.localPort);
        span.setAttribute('network.protocol.version', ctx.req.httpVersion);
        ctx.res.on('close', () => {
          if (ctx._matchedRoute) {
            span.setAttribute('http.route', ctx._matchedRoute);
            span.updateName(`${ctx.method} ${ctx._matchedRoute}`);
          }
          span.setAttribute('http.response.status_code', ctx.res.statusCode);
          if (ctx.res.statusCode >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
          span.end();
        });
      }
      return api.context.with(api.trace.setSpan(parent, span), next);
    });
  }
  const router = new Router({ prefix: '/api' });
  router.get('/tools/:name', (ctx) => {
    count();
    ctx.body = { tool: ctx.params.name, ok: true };
  });
  app.use(router.routes());
  server = app.listen(0, '127.0.0.1', ready);
}

function ready() {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
}

process.once('SIGTERM', async () => {
  server.close();
  server.closeAllConnections();
  await flush();
  const cpu = process.cpuUsage(cpuMark);
  const measured = served - servedAtMark;
  process.stdout.write(
    `${JSON.stringify({ served, sampled, measured, cpuMicros: cpu.user + cpu.system })}\n`,
  );
  process.exit(0);
});
