import { afterEach, describe, expect, it } from 'vitest';
import { type OtlpReceiver, startOtlpReceiver } from '../src/testing.js';
import { fixtureProcesses } from './fixture-processes.js';

// These tests run real Node.js processes against the built package (`@amas/otel/register` resolves to
// dist through the package's own exports), as users run it: ESM with --import, CommonJS with --require.
const run = fixtureProcesses();
let receiver: OtlpReceiver;

afterEach(async () => {
  await receiver?.close();
});

async function hit(port: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/work/${i}`);
    expect(await res.text()).toBe(`done ${i}`);
  }
}

function otelEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    OTEL_SERVICE_NAME: 'fixture',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
    // Nothing is exported on a schedule during the test: every span must come from the flush at the end.
    OTEL_BSP_SCHEDULE_DELAY: '60000',
    ...extra,
  };
}

describe('SIGTERM (node --import @amas/otel/register, ESM)', () => {
  it('delivers every span of a service killed with SIGTERM, then ends by that signal as it would have', async () => {
    receiver = await startOtlpReceiver();
    const child = run(['--import', '@amas/otel/register', 'server.mjs'], otelEnv());
    const { port } = await child.firstLine;
    const n = 25;
    await hit(port, n);
    expect(receiver.spans).toHaveLength(0);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(receiver.spans).toHaveLength(n);
    expect(new Set(receiver.spans.map((s) => s.attributes['url.path']))).toEqual(
      new Set(Array.from({ length: n }, (_, i) => `/work/${i}`)),
    );
    expect(child.stderr()).toMatch(/@amas\/otel: tracing on service\.name=fixture .*signals=SIGTERM,SIGINT/);
  });

  it('does the same on SIGINT (Ctrl-C)', async () => {
    receiver = await startOtlpReceiver();
    const child = run(['--import', '@amas/otel/register', 'server.mjs'], otelEnv());
    const { port } = await child.firstLine;
    await hit(port, 7);
    child.proc.kill('SIGINT');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGINT' });
    expect(receiver.spans).toHaveLength(7);
  });

  it('leaves signals alone with AMAS_OTEL_SIGNALS=false (and the spans then die with the process)', async () => {
    receiver = await startOtlpReceiver();
    const child = run(
      ['--import', '@amas/otel/register', 'server.mjs'],
      otelEnv({ AMAS_OTEL_SIGNALS: 'false' }),
    );
    const { port } = await child.firstLine;
    await hit(port, 3);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(receiver.spans).toHaveLength(0);
    expect(child.stderr()).toMatch(/signals=off/);
  });

  it('flushes and lets the application end by itself when it handles SIGTERM', async () => {
    receiver = await startOtlpReceiver();
    const child = run(
      ['--import', '@amas/otel/register', 'server.mjs'],
      otelEnv({ FIXTURE_SHUTDOWN: 'graceful' }),
    );
    const { port } = await child.firstLine;
    await hit(port, 10);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(receiver.spans).toHaveLength(10);
  });

  it('does not wait past its deadline when the collector does not answer', async () => {
    receiver = await startOtlpReceiver();
    const blackhole = await import('node:net').then(
      ({ createServer }) =>
        new Promise<import('node:net').Server>((resolve) => {
          const s = createServer(() => {}).listen(0, '127.0.0.1', () => resolve(s));
        }),
    );
    try {
      const { port: dead } = blackhole.address() as { port: number };
      const child = run(
        ['--import', '@amas/otel/register', 'server.mjs'],
        otelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${dead}` }),
      );
      const { port } = await child.firstLine;
      await hit(port, 3);
      const started = Date.now();
      child.proc.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
      // The default deadline is 5 s; generous bound for a loaded machine.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(child.stderr()).toMatch(/flush failed/);
    } finally {
      blackhole.close();
    }
  });
});

describe('CommonJS (node --require @amas/otel/register)', () => {
  it('auto-instruments http and express named in OTEL_NODE_ENABLED_INSTRUMENTATIONS, with one server span', async () => {
    receiver = await startOtlpReceiver();
    const child = run(
      ['--require', '@amas/otel/register', 'server.cjs'],
      otelEnv({ OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,express' }),
    );
    const { port } = await child.firstLine;
    await hit(port, 2);
    child.proc.kill('SIGTERM');
    await child.exited;
    const server = receiver.spans.filter((s) => s.kind === 2);
    expect(server).toHaveLength(2);
    expect(server[0]?.scope.name).toBe('@opentelemetry/instrumentation-http');
    expect(server[0]?.name).toBe('GET /work/:n');
    const express = receiver.spans.filter((s) => s.scope.name === '@opentelemetry/instrumentation-express');
    expect(express.length).toBeGreaterThan(0);
    expect(
      express.every((s) => server.some((p) => p.spanId === s.parentSpanId || p.traceId === s.traceId)),
    ).toBe(true);
    expect(child.stderr()).not.toMatch(/warning/);
  });
});

describe('Koa (node --require @amas/otel/register)', () => {
  it('auto-instruments koa named in OTEL_NODE_ENABLED_INSTRUMENTATIONS, and names the http span by the route', async () => {
    receiver = await startOtlpReceiver();
    const child = run(
      ['--require', '@amas/otel/register', 'koa-server.cjs'],
      otelEnv({ OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,koa' }),
    );
    const { port } = await child.firstLine;
    const res = await fetch(`http://127.0.0.1:${port}/api/work/1`);
    expect(await res.text()).toBe('done 1');
    child.proc.kill('SIGTERM');
    await child.exited;
    const server = receiver.spans.filter((s) => s.kind === 2);
    expect(server).toHaveLength(1);
    expect(server[0]).toMatchObject({
      name: 'GET /api/work/:n',
      attributes: { 'http.route': '/api/work/:n' },
    });
    const koa = receiver.spans.filter((s) => s.scope.name === '@opentelemetry/instrumentation-koa');
    expect(koa.length).toBeGreaterThan(0);
    expect(koa.every((s) => s.traceId === server[0]?.traceId)).toBe(true);
  });
});

describe('ESM auto-instrumentation through the loader hook', () => {
  it('instruments express imported by an ESM application started with --import', async () => {
    receiver = await startOtlpReceiver();
    const child = run(
      ['--import', '@amas/otel/register', 'server.mjs'],
      otelEnv({ OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,express' }),
    );
    const { port } = await child.firstLine;
    await hit(port, 2);
    child.proc.kill('SIGTERM');
    await child.exited;
    expect(receiver.spans.filter((s) => s.kind === 2)).toHaveLength(2);
    expect(receiver.spans.some((s) => s.scope.name === '@opentelemetry/instrumentation-express')).toBe(true);
  });

  it('warns, with the fix, when express was loaded before tracing started', async () => {
    const child = run(['late-setup.mjs'], {});
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(child.stderr()).toMatch(
      /warning: express was loaded before tracing started, so the "express" instrumentation cannot patch it.*node --import @amas\/otel\/register/,
    );
  });
});

describe('exit without shutdown', () => {
  it('delivers the spans of a process that simply runs out of work (beforeExit)', async () => {
    receiver = await startOtlpReceiver();
    const child = run(['spans-then-exit.mjs'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
      FIXTURE_SPANS: '40',
    });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(receiver.spans).toHaveLength(40);
    expect(
      receiver.spans.every((s) => s.name === 'job.step' && s.resource['service.name'] === 'batch-job'),
    ).toBe(true);
  });
});
