import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import express5 from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, it } from 'vitest';
import { recordErrors, requestTelemetry, traceRequests } from '../src/express.js';
import { setupTelemetry } from '../src/setup.js';
import { startOtlpReceiver } from '../src/testing.js';
import { withSpan } from '../src/with-span.js';
import { startTracing } from './helpers.js';

type ExpressFactory = typeof express5;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(app: (req: never, res: never) => void): Promise<string> {
  const server = createServer(app as never);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function buildApp(express: ExpressFactory, options?: Parameters<typeof traceRequests>[0]) {
  const app = express();
  app.use(traceRequests(options));
  const posts = express.Router({ mergeParams: true });
  posts.get('/posts/:pid', async (req, res) => {
    const child = await withSpan('load.post', async () => trace.getActiveSpan()?.spanContext().spanId)();
    res.json({ child, telemetry: requestTelemetry(req) && { ...requestTelemetry(req), span: undefined } });
  });
  const users = express.Router();
  users.use('/users/:id', posts);
  app.use('/api/v1', users);
  app.get('/healthz', (_req, res) => {
    withSpan('health.check', () => {})();
    res.send('ok');
  });
  app.get('/boom', () => {
    throw Object.assign(new Error('db down'), { code: 'db_unavailable' });
  });
  app.get('/denied', (_req, res) => {
    res.status(403).send('no');
  });
  app.use(recordErrors());
  return app;
}

function server(spans: ReadableSpan[]): ReadableSpan {
  const found = spans.filter((s) => s.kind === SpanKind.SERVER);
  expect(found).toHaveLength(1);
  return found[0] as ReadableSpan;
}

describe.each([
  ['Express 4', express4 as unknown as ExpressFactory],
  ['Express 5', express5],
])('%s traceRequests()', (_name, express) => {
  it('makes one server span with the stable HTTP conventions and the route template of nested routers', async () => {
    const t = startTracing();
    const base = await listen(buildApp(express));
    const res = await fetch(`${base}/api/v1/users/42/posts/7?token=secret`);
    expect(res.status).toBe(200);
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
    expect(s.status.code).toBe(SpanStatusCode.UNSET);
    expect(JSON.stringify(spans.map((x) => x.attributes))).not.toContain('secret');
  });

  it('continues an incoming traceparent, and spans made in handlers nest under the request span', async () => {
    const t = startTracing({ samplerRatio: 0 });
    const base = await listen(buildApp(express));
    const res = await fetch(`${base}/api/v1/users/1/posts/2`, {
      headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
    const body = (await res.json()) as { child: string; telemetry: { traceId: string; sampled: boolean } };
    const spans = await t.spans();
    const s = server(spans);
    expect(s.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(s.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    const child = spans.find((x) => x.name === 'load.post');
    expect(child?.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
    expect(child?.spanContext().spanId).toBe(body.child);
    expect(body.telemetry).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', sampled: true });
  });

  it('records nothing for a caller that did not sample the trace, and passes its trace id on', async () => {
    const t = startTracing({ samplerRatio: 1 });
    const base = await listen(buildApp(express));
    const res = await fetch(`${base}/api/v1/users/1/posts/2`, {
      headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' },
    });
    const body = (await res.json()) as { telemetry: { traceId: string; sampled: boolean } };
    expect(body.telemetry).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', sampled: false });
    expect(await t.spans()).toEqual([]);
  });

  it('marks a 5xx as an error with the error type, records the exception, and leaves a 4xx unset', async () => {
    const t = startTracing();
    const base = await listen(buildApp(express));
    expect((await fetch(`${base}/boom`)).status).toBe(500);
    expect((await fetch(`${base}/denied`)).status).toBe(403);
    const spans = await t.spans();
    const boom = spans.find((s) => s.attributes['url.path'] === '/boom');
    expect(boom?.status.code).toBe(SpanStatusCode.ERROR);
    expect(boom?.attributes).toMatchObject({
      'http.response.status_code': 500,
      'error.type': 'db_unavailable',
    });
    expect(boom?.events.map((e) => e.name)).toEqual(['exception']);
    const denied = spans.find((s) => s.attributes['url.path'] === '/denied');
    expect(denied?.status.code).toBe(SpanStatusCode.UNSET);
    expect(denied?.attributes['error.type']).toBeUndefined();
    expect(denied?.attributes['http.response.status_code']).toBe(403);
  });

  it('gives an unmatched request no http.route and a span named after the method only', async () => {
    const t = startTracing();
    const base = await listen(buildApp(express));
    expect((await fetch(`${base}/nowhere/42`)).status).toBe(404);
    const s = server(await t.spans());
    expect(s.name).toBe('GET');
    expect(s.attributes['http.route']).toBeUndefined();
    expect(s.attributes['http.response.status_code']).toBe(404);
  });

  it('ignores health checks, and suppresses the spans made while serving them', async () => {
    const t = startTracing();
    const base = await listen(buildApp(express));
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok');
    expect(await t.spans()).toEqual([]);
  });

  it('makes one server span when mounted twice on the way of a request, the inner mount a pass-through', async () => {
    const t = startTracing();
    const app = express();
    app.use(traceRequests());
    const api = express.Router();
    api.use(traceRequests());
    api.get('/tools/:name', async (req, res) => {
      await withSpan('tool.run', async () => {})();
      res.json({ traceId: requestTelemetry(req)?.traceId });
    });
    app.use('/api', api);
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
    const app = express();
    app.use(traceRequests({ ignore: [/^\/internal\//] }));
    const internal = express.Router();
    internal.use(traceRequests({ ignore: [] }));
    internal.get('/internal/stats', (_req, res) => {
      withSpan('stats.read', () => {})();
      res.send('ok');
    });
    app.use(internal);
    const base = await listen(app);
    expect(await (await fetch(`${base}/internal/stats`)).text()).toBe('ok');
    expect(await t.spans()).toEqual([]);
  });

  it('takes an ignore list of patterns or a predicate', async () => {
    const t = startTracing();
    const base = await listen(buildApp(express, { ignore: (path) => path.startsWith('/api/') }));
    await fetch(`${base}/api/v1/users/1/posts/2`);
    await fetch(`${base}/healthz`);
    const spans = await t.spans();
    expect(spans.map((s) => s.name).sort()).toEqual(['GET /healthz', 'health.check']);
  });

  it('traces the request, and serves it, when the ignore predicate throws', async () => {
    const t = startTracing();
    const base = await listen(
      buildApp(express, {
        ignore: () => {
          throw new Error('bug in the predicate');
        },
      }),
    );
    expect((await fetch(`${base}/api/v1/users/1/posts/2`)).status).toBe(200);
    expect(server(await t.spans()).attributes['http.route']).toBe('/api/v1/users/:id/posts/:pid');
  });

  it('matches ignore patterns the same on every request, even global ones', async () => {
    const t = startTracing();
    const base = await listen(buildApp(express, { ignore: [/^\/healthz$/g] }));
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok');
    expect(await t.spans()).toEqual([]);
  });

  it('records a valid x-request-id and refuses one that could inject into logs', async () => {
    const t = startTracing();
    const base = await listen(buildApp(express));
    const ok = await fetch(`${base}/api/v1/users/1/posts/2`, { headers: { 'x-request-id': 'req-7f3a.9' } });
    const okBody = (await ok.json()) as { telemetry: { requestId: string } };
    expect(okBody.telemetry.requestId).toBe('req-7f3a.9');
    const bad = await fetch(`${base}/api/v1/users/1/posts/3`, {
      headers: { 'x-request-id': 'a b\tc=<script>' },
    });
    const badBody = (await bad.json()) as { telemetry: { requestId: string; traceId: string } };
    expect(badBody.telemetry.requestId).toBe(badBody.telemetry.traceId);
    const spans = (await t.spans()).filter((s) => s.kind === SpanKind.SERVER);
    expect(spans.map((s) => s.attributes['amas.otel.request_id'])).toEqual(['req-7f3a.9', undefined]);
  });

  it('exports nothing when the request is not sampled, and still exposes the trace id', async () => {
    const t = startTracing({ sampler: 'always_off' });
    const base = await listen(buildApp(express));
    const body = (await (await fetch(`${base}/api/v1/users/1/posts/2`)).json()) as {
      telemetry: { sampled: boolean; traceId: string };
    };
    expect(body.telemetry.sampled).toBe(false);
    expect(body.telemetry.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(await t.spans()).toEqual([]);
  });

  it('records the route template of a mounted sub-application', async () => {
    const t = startTracing();
    const app = express();
    app.use(traceRequests());
    const admin = express();
    admin.get('/tools/:name', (_req, res) => {
      res.send('tool');
    });
    app.use('/admin', admin);
    const base = await listen(app);
    await fetch(`${base}/admin/tools/search`);
    expect(server(await t.spans()).attributes['http.route']).toBe('/admin/tools/:name');
  });
});

describe('traceRequests() with the http auto-instrumentation', () => {
  it('enriches the auto-instrumentation server span instead of making a second one', async () => {
    const t = startTracing({ instrumentations: ['http'] });
    const base = await listen(buildApp(express5));
    await fetch(`${base}/api/v1/users/9/posts/8`, { headers: { 'x-request-id': 'abc-123' } });
    const spans = await t.spans();
    const s = server(spans);
    expect(s.instrumentationScope.name).toBe('@opentelemetry/instrumentation-http');
    expect(s.name).toBe('GET /api/v1/users/:id/posts/:pid');
    expect(s.attributes).toMatchObject({
      'http.route': '/api/v1/users/:id/posts/:pid',
      'amas.otel.request_id': 'abc-123',
      'http.response.status_code': 200,
    });
    expect(spans.find((x) => x.name === 'load.post')?.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
  });
});

describe('end to end through the real OTLP/HTTP exporter', () => {
  it('exports the request span and its child, linked to the caller, as OTLP JSON', async () => {
    const receiver = await startOtlpReceiver();
    const handle = setupTelemetry({
      serviceName: 'gateway',
      endpoint: receiver.baseUrl,
      env: {},
      esmLoaderHook: false,
      logger: false,
    });
    try {
      const base = await listen(buildApp(express5));
      await fetch(`${base}/api/v1/users/5/posts/6`, {
        headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      });
    } finally {
      await handle.shutdown();
    }
    const spans = await receiver.waitForSpans(2);
    await receiver.close();
    const s = spans.find((x) => x.kind === 2);
    const child = spans.find((x) => x.name === 'load.post');
    expect(s).toMatchObject({
      name: 'GET /api/v1/users/:id/posts/:pid',
      traceId: '0af7651916cd43dd8448eb211c80319c',
      parentSpanId: 'b7ad6b7169203331',
      attributes: { 'http.route': '/api/v1/users/:id/posts/:pid', 'http.response.status_code': 200 },
      resource: { 'service.name': 'gateway' },
      scope: { name: '@amas/otel' },
    });
    expect(child).toMatchObject({ traceId: s?.traceId, parentSpanId: s?.spanId, kind: 1 });
  });
});
