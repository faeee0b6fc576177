// Independent review: the Express and Koa middleware under hostile and unusual requests. Every case must end
// the server span exactly once, with the right status, and never throw into the application. Real servers on
// 127.0.0.1; raw sockets where `fetch` cannot send the request (fragments, absolute-form targets, bare CR).
import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Readable } from 'node:stream';
import Router from '@koa/router';
import { DiagLogLevel, diag, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { traceRequests as expressTrace, recordErrors } from '../src/express.js';
import { traceRequests as koaTrace } from '../src/koa.js';
import { type Started, startTracing } from './helpers.js';

const servers: Server[] = [];
const diagnostics: string[] = [];
beforeEach(() => {
  diagnostics.length = 0;
  diag.setLogger(
    {
      error: (m) => diagnostics.push(m),
      warn: (m) => diagnostics.push(m),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    DiagLogLevel.WARN,
  );
});
afterEach(async () => {
  diag.disable();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** What the application saw: errors that reached it, and handlers that ran to their end. */
interface AppLog {
  errors: unknown[];
  finished: string[];
  release: () => void;
}

interface Built {
  base: string;
  port: number;
  log: AppLog;
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open = (): void => {};
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

async function serve(server: Server): Promise<{ base: string; port: number }> {
  servers.push(server);
  if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, port };
}

type ExpressFactory = typeof express5;

async function expressApp(express: ExpressFactory): Promise<Built> {
  const { createServer } = await import('node:http');
  const released = gate();
  const log: AppLog = { errors: [], finished: [], release: released.open };
  const app = express();
  app.use(expressTrace());
  app.get('/api/items/:id', (_req, res) => {
    res.send('item');
  });
  app.get(/^\/re\/(\d+)$/, (_req, res) => {
    res.send('regex');
  });
  app.get(['/one', '/two'], (_req, res) => {
    res.send('array');
  });
  app.get('/slow', async (_req, res) => {
    await released.wait;
    res.send('late');
    log.finished.push('slow');
  });
  app.get('/never', () => {});
  app.get('/partial', (_req, res) => {
    res.status(200).write('partial');
    throw Object.assign(new Error('stream broke'), { code: 'upstream_reset' });
  });
  app.get('/stream', async (_req, res) => {
    res.status(200);
    for (let i = 0; i < 3; i++) {
      res.write(`chunk${i}`);
      await new Promise((r) => setTimeout(r, 15));
    }
    res.end();
  });
  app.use(recordErrors());
  app.use((err: unknown, _req: unknown, _res: unknown, next: (e: unknown) => void) => {
    log.errors.push(err);
    next(err);
  });
  const server = createServer(app as never);
  return { ...(await serve(server)), log };
}

type KoaCtor = typeof Koa3;

async function koaApp(Koa: KoaCtor): Promise<Built> {
  const released = gate();
  const log: AppLog = { errors: [], finished: [], release: released.open };
  const app = new Koa();
  app.silent = true;
  app.on('error', (err) => log.errors.push(err));
  app.use(koaTrace());
  const members = new Router();
  members.get('/members/:mid', (ctx) => {
    ctx.body = 'member';
  });
  const v2 = new Router({ prefix: '/v2' });
  v2.use('/orgs/:org', members.routes());
  const api = new Router({ prefix: '/api' });
  api.get('/items/:id', (ctx) => {
    ctx.body = 'item';
  });
  const root = new Router();
  root.get('/slow', async (ctx) => {
    await released.wait;
    ctx.body = 'late';
    log.finished.push('slow');
  });
  root.get('/never', () => new Promise(() => {}));
  root.get('/partial', (ctx) => {
    const body = new Readable({ read() {} });
    body.push('partial');
    setTimeout(() => body.destroy(Object.assign(new Error('stream broke'), { code: 'upstream_reset' })), 10);
    ctx.body = body;
  });
  root.get('/stream', (ctx) => {
    let i = 0;
    ctx.body = new Readable({
      read() {
        if (i === 3) this.push(null);
        else setTimeout(() => this.push(`chunk${i++}`), 15);
      },
    });
  });
  app.use(v2.routes());
  app.use(api.routes());
  app.use(root.routes());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { ...(await serve(server)), log };
}

/** Sends raw bytes and returns the status line (or '' if the server closed without answering). */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (d) => {
      data += d.toString('latin1');
    });
    socket.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
    socket.on('error', () => {});
  });
}

/** Flushes until `count` server spans are there (a generous bound for a loaded machine), then returns them. */
async function serverSpans(t: Started, count: number): Promise<ReadableSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = (await t.spans()).filter((s) => s.kind === SpanKind.SERVER);
    if (found.length >= count || Date.now() > deadline) {
      // Give a second end (if any) a moment to show up before judging "exactly once".
      await new Promise((r) => setTimeout(r, 20));
      return (await t.spans()).filter((s) => s.kind === SpanKind.SERVER);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

function only(spans: ReadableSpan[]): ReadableSpan {
  expect(spans).toHaveLength(1);
  return spans[0] as ReadableSpan;
}

function endedOnce(): void {
  expect(diagnostics.filter((m) => /ended/i.test(m))).toEqual([]);
}

const VALID_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const VALID_PARENT = `00-${VALID_TRACE}-00f067aa0ba902b7-01`;

const frameworks: [string, () => Promise<Built>, { itemRoute: string; itemPath: string }][] = [
  [
    'Express 4',
    () => expressApp(express4 as unknown as ExpressFactory),
    { itemRoute: '/api/items/:id', itemPath: '/api/items/7' },
  ],
  ['Express 5', () => expressApp(express5), { itemRoute: '/api/items/:id', itemPath: '/api/items/7' }],
  [
    'Koa 2',
    () => koaApp(Koa2 as unknown as KoaCtor),
    { itemRoute: '/api/items/:id', itemPath: '/api/items/7' },
  ],
  ['Koa 3', () => koaApp(Koa3), { itemRoute: '/api/items/:id', itemPath: '/api/items/7' }],
];

describe.each(frameworks)('%s traceRequests() under hostile requests', (_name, build, paths) => {
  it.each([
    ['a query and a fragment', (p: string) => `${p}?token=secret#frag`],
    ['a fragment only', (p: string) => `${p}#token=secret`],
    ['an absolute-form target', (p: string) => `http://evil.example${p}?token=secret`],
  ])('records url.path without %s', async (_what, target) => {
    const t = startTracing();
    const { port } = await build();
    const status = await raw(
      port,
      `GET ${target(paths.itemPath)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    );
    expect(status).toBe('HTTP/1.1 200 OK');
    const s = only(await serverSpans(t, 1));
    expect(s.attributes['url.path']).toBe(paths.itemPath);
    expect(s.attributes['http.route']).toBe(paths.itemRoute);
    expect(JSON.stringify(s.attributes)).not.toContain('secret');
    endedOnce();
  });

  it.each([
    ['garbage', 'not a traceparent'],
    ['version ff', `ff-${VALID_TRACE}-00f067aa0ba902b7-01`],
    ['version 00 with trailing data', `${VALID_PARENT}-extra`],
    ['an all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['an all-zero parent id', `00-${VALID_TRACE}-0000000000000000-01`],
    ['upper-case hex', `00-${VALID_TRACE.toUpperCase()}-00F067AA0BA902B7-01`],
    ['8 kB of hex', `00-${'a'.repeat(8000)}`],
  ])('starts a new trace, and serves the request, for a traceparent with %s', async (_what, traceparent) => {
    const t = startTracing();
    const { base } = await build();
    const res = await fetch(`${base}${paths.itemPath}`, {
      headers: { traceparent, tracestate: `${'k'.repeat(200)}=v,`.repeat(30) },
    });
    expect(res.status).toBe(200);
    const s = only(await serverSpans(t, 1));
    expect(s.parentSpanContext).toBeUndefined();
    expect(s.spanContext().traceId).not.toBe(VALID_TRACE);
    expect(s.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    endedOnce();
  });

  it('continues a valid traceparent whatever the size of its tracestate, keeping at most 32 entries', async () => {
    const t = startTracing();
    const { base } = await build();
    const tracestate = Array.from({ length: 200 }, (_, i) => `v${i}=${'x'.repeat(20)}`).join(',');
    const res = await fetch(`${base}${paths.itemPath}`, {
      headers: { traceparent: VALID_PARENT, tracestate },
    });
    expect(res.status).toBe(200);
    const s = only(await serverSpans(t, 1));
    expect(s.spanContext().traceId).toBe(VALID_TRACE);
    expect(s.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect((s.spanContext().traceState?.serialize() ?? '').split(',').length).toBeLessThanOrEqual(32);
  });

  it.each([
    ['10 kB long', 'a'.repeat(10_000)],
    ['with a tab', 'a\tb'],
    ['with non-ASCII', 'caf\u00e9'],
    ['with a log-injection attempt', 'abc" level=error msg="forged'],
  ])('ignores an x-request-id %s, and still serves the request', async (_what, id) => {
    const t = startTracing();
    const { base } = await build();
    const res = await fetch(`${base}${paths.itemPath}`, { headers: { 'x-request-id': id } });
    expect(res.status).toBe(200);
    const s = only(await serverSpans(t, 1));
    expect(s.attributes['amas.otel.request_id']).toBeUndefined();
  });

  it('ignores two x-request-id headers (joined by Node.js), and records none', async () => {
    const t = startTracing();
    const { port } = await build();
    const status = await raw(
      port,
      `GET ${paths.itemPath} HTTP/1.1\r\nHost: x\r\nx-request-id: one\r\nx-request-id: two\r\nConnection: close\r\n\r\n`,
    );
    expect(status).toBe('HTTP/1.1 200 OK');
    expect(only(await serverSpans(t, 1)).attributes['amas.otel.request_id']).toBeUndefined();
  });

  it('never sees an x-request-id with a bare CR (Node.js refuses the request), and serves the next one', async () => {
    const t = startTracing();
    const { port, base } = await build();
    const status = await raw(port, `GET ${paths.itemPath} HTTP/1.1\r\nHost: x\r\nx-request-id: a\rb\r\n\r\n`);
    expect(status).toMatch(/^HTTP\/1\.1 400 /);
    expect((await fetch(`${base}${paths.itemPath}`)).status).toBe(200);
    expect(only(await serverSpans(t, 1)).attributes['url.path']).toBe(paths.itemPath);
  });

  it('ends the span once, without a status code, when the client aborts before the response; the handler still finishes', async () => {
    const t = startTracing();
    const { base, log } = await build();
    const controller = new AbortController();
    const request = fetch(`${base}/slow`, { signal: controller.signal }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    expect(await request).toBeInstanceOf(Error);
    const s = only(await serverSpans(t, 1));
    expect(s.attributes['http.response.status_code']).toBeUndefined();
    expect(s.status.code).toBe(SpanStatusCode.UNSET);
    log.release();
    const deadline = Date.now() + 5000;
    while (log.finished.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(log.finished).toEqual(['slow']);
    expect(log.errors).toEqual([]);
    expect(await serverSpans(t, 1)).toHaveLength(1);
    endedOnce();
  });

  it('ends the span once when the handler never responds and the client gives up', async () => {
    const t = startTracing();
    const { base } = await build();
    const outcome = await fetch(`${base}/never`, { signal: AbortSignal.timeout(100) }).catch(
      (e: unknown) => e,
    );
    expect(outcome).toBeInstanceOf(Error);
    const s = only(await serverSpans(t, 1));
    expect(s.ended).toBe(true);
    expect(s.attributes['http.response.status_code']).toBeUndefined();
    endedOnce();
  });

  it('marks the span as an error when the response breaks after its headers were sent', async () => {
    const t = startTracing();
    const { base } = await build();
    const res = await fetch(`${base}/partial`, { signal: AbortSignal.timeout(500) });
    expect(res.status).toBe(200);
    await res.text().catch(() => 'broken');
    const s = only(await serverSpans(t, 1));
    expect(s.attributes['http.response.status_code']).toBe(200);
    expect(s.status.code).toBe(SpanStatusCode.ERROR);
    expect(s.attributes['error.type']).toBe('upstream_reset');
    expect(s.events.map((e) => e.name)).toContain('exception');
    endedOnce();
  });

  it('ends the span of a streamed response after its last chunk, with its status', async () => {
    const t = startTracing();
    const { base } = await build();
    const res = await fetch(`${base}/stream`);
    expect(await res.text()).toBe('chunk0chunk1chunk2');
    const s = only(await serverSpans(t, 1));
    expect(s.attributes['http.response.status_code']).toBe(200);
    expect(s.status.code).toBe(SpanStatusCode.UNSET);
    const durationMs = s.duration[0] * 1e3 + s.duration[1] / 1e6;
    // Three chunks 15 ms apart: the span cannot have ended before the second pause was over.
    expect(durationMs).toBeGreaterThanOrEqual(25);
    endedOnce();
  });

  it('names an unknown method _OTHER and keeps the original', async () => {
    const t = startTracing();
    const { base } = await build();
    await fetch(`${base}${paths.itemPath}`, { method: 'PROPFIND' });
    const s = only(await serverSpans(t, 1));
    expect(s.name).toBe('HTTP');
    expect(s.attributes['http.request.method']).toBe('_OTHER');
    expect(s.attributes['http.request.method_original']).toBe('PROPFIND');
  });
});

describe.each([
  ['Express 4', express4 as unknown as ExpressFactory],
  ['Express 5', express5],
])('%s routes written as a regular expression or an array', (_name, express) => {
  it('get no http.route (rather than a wrong or high-cardinality one), and a span named after the method', async () => {
    const t = startTracing();
    const { base } = await expressApp(express);
    expect(await (await fetch(`${base}/re/123`)).text()).toBe('regex');
    expect(await (await fetch(`${base}/two`)).text()).toBe('array');
    const spans = await serverSpans(t, 2);
    expect(spans).toHaveLength(2);
    for (const s of spans) {
      expect(s.attributes['http.route']).toBeUndefined();
      expect(s.name).toBe('GET');
    }
  });
});

describe.each([
  ['Koa 2', Koa2 as unknown as KoaCtor],
  ['Koa 3', Koa3],
])('%s routers with prefixes', (_name, Koa) => {
  it('record the full template of a prefixed router nested in a prefixed router', async () => {
    const t = startTracing();
    const { base } = await koaApp(Koa);
    expect(await (await fetch(`${base}/v2/orgs/acme/members/42?x=1`)).text()).toBe('member');
    const s = only(await serverSpans(t, 1));
    expect(s.attributes['http.route']).toBe('/v2/orgs/:org/members/:mid');
    expect(s.name).toBe('GET /v2/orgs/:org/members/:mid');
    expect(s.attributes['url.path']).toBe('/v2/orgs/acme/members/42');
  });
});

describe.each([
  ['Express 5', 'express'],
  ['Koa 3', 'koa'],
])('%s requestIdHeader', (_name, framework) => {
  it('finds the header whatever the case it is configured in (Node.js lower-cases header names)', async () => {
    const t = startTracing();
    let base: string;
    if (framework === 'express') {
      const app = express5();
      app.use(expressTrace({ requestIdHeader: 'X-Correlation-ID' }));
      app.get('/x', (_req, res) => {
        res.send('ok');
      });
      const { createServer } = await import('node:http');
      base = (await serve(createServer(app as never))).base;
    } else {
      const app = new Koa3();
      app.use(koaTrace({ requestIdHeader: 'X-Correlation-ID' }));
      app.use((ctx) => {
        ctx.body = 'ok';
      });
      base = (await serve(app.listen(0, '127.0.0.1'))).base;
    }
    await fetch(`${base}/x`, { headers: { 'x-correlation-id': 'corr-42' } });
    expect(only(await serverSpans(t, 1)).attributes['amas.otel.request_id']).toBe('corr-42');
  });
});
