import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterEach, describe, expect, it } from 'vitest';
import { requestTelemetry, traceRequests } from '../src/koa.js';
import { setupTelemetry } from '../src/setup.js';
import { startOtlpReceiver } from '../src/testing.js';
import { withSpan } from '../src/with-span.js';
import { startTracing } from './helpers.js';

type KoaCtor = typeof Koa3;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(app: Koa3): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((r) => server.once('listening', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function buildApp(Koa: KoaCtor, options?: Parameters<typeof traceRequests>[0]) {
  const app = new Koa();
  app.silent = true;
  app.use(traceRequests(options));
  const posts = new Router();
  posts.get('/:id/posts/:pid', async (ctx) => {
    const child = await withSpan('load.post', async () => trace.getActiveSpan()?.spanContext().spanId)();
    const telemetry = requestTelemetry(ctx);
    ctx.body = { child, telemetry: telemetry && { ...telemetry, span: undefined } };
  });
  const api = new Router({ prefix: '/api/v1' });
  api.use('/users', posts.routes());
  api.get('/boom', () => {
    throw Object.assign(new Error('db down'), { code: 'db_unavailable' });
  });
  api.get('/denied', (ctx) => {
    ctx.throw(403, 'no');
  });
  const root = new Router();
  root.get('/healthz', (ctx) => {
    withSpan('health.check', () => {})();
    ctx.body = 'ok';
  });
  app.use(api.routes());
  app.use(root.routes());
  return app;
}

function server(spans: ReadableSpan[]): ReadableSpan {
  const found = spans.filter((s) => s.kind === SpanKind.SERVER);
  expect(found).toHaveLength(1);
  return found[0] as ReadableSpan;
}

describe.each([
  ['Koa 2', Koa2 as unknown as KoaCtor],
  ['Koa 3', Koa3],
])('%s traceRequests()', (_name, Koa) => {
  it('makes one server span with the stable HTTP conventions and the route template of nested routers', async () => {
    const t = startTracing();
    const base = await listen(buildApp(Koa));
    expect((await fetch(`${base}/api/v1/users/42/posts/7?token=secret`)).status).toBe(200);
    const spans = await t.spans();
    const s = server(spans);
    expect(s.name).toBe('GET /api/v1/users/:id/posts/:pid');
    expect(s.attributes).toEqual({
      'http.request.method': 'GET',
      'url.path': '/api/v1/users/42/posts/7',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(base).port),
      'network.protocol.version': '1.1',
      'http.route': '/api/v1/users/:id/posts/:pid',
      'http.response.status_code': 200,
    });
    expect(JSON.stringify(spans.map((x) => x.attributes))).not.toContain('secret');
  });

  it('continues an incoming traceparent, and spans made downstream nest under the request span', async () => {
    const t = startTracing({ samplerRatio: 0 });
    const base = await listen(buildApp(Koa));
    const res = await fetch(`${base}/api/v1/users/1/posts/2`, {
      headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
    const body = (await res.json()) as { child: string; telemetry: { traceId: string } };
    const spans = await t.spans();
    const s = server(spans);
    expect(s.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(s.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    const child = spans.find((x) => x.name === 'load.post');
    expect(child?.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
    expect(child?.spanContext().spanId).toBe(body.child);
    expect(body.telemetry.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('records a thrown error, marks the 5xx as an error, and leaves a 4xx unset', async () => {
    const t = startTracing();
    const base = await listen(buildApp(Koa));
    expect((await fetch(`${base}/api/v1/boom`)).status).toBe(500);
    expect((await fetch(`${base}/api/v1/denied`)).status).toBe(403);
    const spans = await t.spans();
    const boom = spans.find((s) => s.attributes['http.route'] === '/api/v1/boom');
    expect(boom?.status.code).toBe(SpanStatusCode.ERROR);
    expect(boom?.attributes).toMatchObject({
      'http.response.status_code': 500,
      'error.type': 'db_unavailable',
    });
    expect(boom?.events.map((e) => e.name)).toEqual(['exception']);
    const denied = spans.find((s) => s.attributes['http.route'] === '/api/v1/denied');
    expect(denied?.status.code).toBe(SpanStatusCode.UNSET);
    expect(denied?.attributes['http.response.status_code']).toBe(403);
  });

  it('gives an unmatched request no http.route', async () => {
    const t = startTracing();
    const base = await listen(buildApp(Koa));
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    const s = server(await t.spans());
    expect(s.name).toBe('GET');
    expect(s.attributes['http.route']).toBeUndefined();
  });

  it('ignores health checks, and suppresses the spans made while serving them', async () => {
    const t = startTracing();
    const base = await listen(buildApp(Koa));
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok');
    expect(await t.spans()).toEqual([]);
  });

  it('makes one server span when mounted twice on the way of a request, the inner mount a pass-through', async () => {
    const t = startTracing();
    const app = new Koa();
    app.silent = true;
    app.use(traceRequests());
    const api = new Router({ prefix: '/api' });
    api.use(traceRequests());
    api.get('/tools/:name', async (ctx) => {
      await withSpan('tool.run', async () => {})();
      ctx.body = { traceId: requestTelemetry(ctx)?.traceId };
    });
    app.use(api.routes());
    const base = await listen(app);
    const body = (await (await fetch(`${base}/api/tools/scan`)).json()) as { traceId: string };
    const spans = await t.spans();
    const s = server(spans);
    expect(s.name).toBe('GET /api/tools/:name');
    expect(s.spanContext().traceId).toBe(body.traceId);
    const child = spans.find((x) => x.name === 'tool.run');
    expect(child?.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
    expect(spans).toHaveLength(2);
  });

  it('keeps a request ignored by the outer mount untraced by an inner mount with another ignore list', async () => {
    const t = startTracing();
    const app = new Koa();
    app.silent = true;
    app.use(traceRequests({ ignore: [/^\/internal\//] }));
    const internal = new Router();
    internal.use(traceRequests({ ignore: [] }));
    internal.get('/internal/stats', (ctx) => {
      withSpan('stats.read', () => {})();
      ctx.body = 'ok';
    });
    app.use(internal.routes());
    const base = await listen(app);
    expect(await (await fetch(`${base}/internal/stats`)).text()).toBe('ok');
    expect(await t.spans()).toEqual([]);
  });

  it('records a valid x-request-id only', async () => {
    const t = startTracing();
    const base = await listen(buildApp(Koa));
    await fetch(`${base}/api/v1/users/1/posts/2`, { headers: { 'x-request-id': 'r-1' } });
    await fetch(`${base}/api/v1/users/1/posts/3`, { headers: { 'x-request-id': `${'x'.repeat(129)}` } });
    const spans = (await t.spans()).filter((s) => s.kind === SpanKind.SERVER);
    expect(spans.map((s) => s.attributes['amas.otel.request_id'])).toEqual(['r-1', undefined]);
  });

  it('exports nothing when the request is not sampled', async () => {
    const t = startTracing({ sampler: 'always_off' });
    const base = await listen(buildApp(Koa));
    const body = (await (await fetch(`${base}/api/v1/users/1/posts/2`)).json()) as {
      telemetry: { sampled: boolean };
    };
    expect(body.telemetry.sampled).toBe(false);
    expect(await t.spans()).toEqual([]);
  });
});

describe('Koa traceRequests() with the http auto-instrumentation', () => {
  it('enriches the auto-instrumentation server span instead of making a second one', async () => {
    const t = startTracing({ instrumentations: ['http'] });
    const base = await listen(buildApp(Koa3));
    await fetch(`${base}/api/v1/users/9/posts/8`);
    const spans = await t.spans();
    const s = server(spans);
    expect(s.instrumentationScope.name).toBe('@opentelemetry/instrumentation-http');
    expect(s.name).toBe('GET /api/v1/users/:id/posts/:pid');
    expect(s.attributes['http.route']).toBe('/api/v1/users/:id/posts/:pid');
    expect(spans.find((x) => x.name === 'load.post')?.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
  });
});

describe('Koa end to end through the real OTLP/HTTP exporter', () => {
  it('exports the request span and its child, linked to the caller, as OTLP JSON', async () => {
    const receiver = await startOtlpReceiver();
    const handle = setupTelemetry({
      serviceName: 'ai-router',
      endpoint: receiver.baseUrl,
      env: {},
      esmLoaderHook: false,
      logger: false,
    });
    try {
      const base = await listen(buildApp(Koa3));
      await fetch(`${base}/api/v1/users/5/posts/6`, {
        headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      });
    } finally {
      await handle.shutdown();
    }
    const spans = await receiver.waitForSpans(2);
    await receiver.close();
    const s = spans.find((x) => x.kind === 2);
    expect(s).toMatchObject({
      name: 'GET /api/v1/users/:id/posts/:pid',
      traceId: '0af7651916cd43dd8448eb211c80319c',
      parentSpanId: 'b7ad6b7169203331',
      resource: { 'service.name': 'ai-router' },
    });
    expect(spans.find((x) => x.name === 'load.post')).toMatchObject({
      traceId: s?.traceId,
      parentSpanId: s?.spanId,
    });
  });
});
