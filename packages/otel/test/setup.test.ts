import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { isTelemetryError } from '../src/errors.js';
import { setupTelemetry } from '../src/setup.js';
import { startOtlpReceiver } from '../src/testing.js';
import { startTracing } from './helpers.js';

const quiet = { info: () => {}, warn: () => {} };

function emit(name: string, attributes: Record<string, string> = {}): void {
  trace.getTracer('test').startSpan(name, { attributes }).end();
}

describe('setupTelemetry', () => {
  it('records spans with the resource of the options and the distro attributes', async () => {
    const t = startTracing({ serviceName: 'orders', serviceVersion: '1.2.3', environment: 'staging' });
    emit('work', { 'job.id': '7' });
    const [span] = await t.spans();
    expect(span?.name).toBe('work');
    expect(span?.attributes).toEqual({ 'job.id': '7' });
    expect(span?.resource.attributes).toMatchObject({
      'service.name': 'orders',
      'service.version': '1.2.3',
      'deployment.environment.name': 'staging',
      'telemetry.distro.name': '@amas/otel',
      'telemetry.sdk.language': 'nodejs',
    });
    expect(t.handle.enabled).toBe(true);
  });

  it('prints the effective configuration once, in one line', () => {
    const t = startTracing({ serviceName: 'orders', headers: { authorization: 'Bearer secret-token' } });
    expect(t.info).toHaveLength(1);
    expect(t.info[0]).toMatch(/^tracing on service\.name=orders exporter=custom sampler=/);
    expect(t.info.join()).not.toContain('secret-token');
  });

  it('does not register twice: a second call returns the running handle and warns if options differ', async () => {
    const t = startTracing({ serviceName: 'first' });
    const warnings: string[] = [];
    const again = setupTelemetry({
      serviceName: 'second',
      env: {},
      esmLoaderHook: false,
      logger: { info: () => {}, warn: (m) => warnings.push(m) },
    });
    expect(again).toBe(t.handle);
    expect(warnings.join()).toMatch(/called again while tracing runs; the running configuration is kept/);
    emit('once');
    const spans = await t.spans();
    expect(spans.map((s) => s.name)).toEqual(['once']);
    expect(spans[0]?.resource.attributes['service.name']).toBe('first');
  });

  it('registers nothing when OTEL_SDK_DISABLED=true, and returns a handle that does nothing', async () => {
    const info: string[] = [];
    const handle = setupTelemetry({
      env: { OTEL_SDK_DISABLED: 'true' },
      logger: { info: (m) => info.push(m), warn: () => {} },
    });
    expect(handle.enabled).toBe(false);
    expect(info).toEqual(['tracing off (OTEL_SDK_DISABLED=true)']);
    const span = trace.getTracer('x').startSpan('nothing');
    expect(span.isRecording()).toBe(false);
    await handle.forceFlush();
    await handle.shutdown();
  });

  it('reads OTEL_SDK_DISABLED=false as enabled (where @vercel/otel reads it as disabled)', async () => {
    const t = startTracing({ env: { OTEL_SDK_DISABLED: 'false' } });
    expect(t.handle.enabled).toBe(true);
    emit('recorded');
    expect((await t.spans()).map((s) => s.name)).toEqual(['recorded']);
  });

  it('samples by ratio, parent-based: a sampled remote parent is followed even at ratio 0', async () => {
    const t = startTracing({ samplerRatio: 0 });
    emit('dropped');
    const parent = propagation.extract(context.active(), {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    trace.getTracer('test').startSpan('kept', { kind: SpanKind.SERVER }, parent).end();
    const spans = await t.spans();
    expect(spans.map((s) => s.name)).toEqual(['kept']);
    expect(spans[0]?.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(spans[0]?.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
  });

  it('frees the global registration on shutdown, so that a new setup starts afresh', async () => {
    const first = startTracing({ serviceName: 'one' });
    await first.handle.shutdown();
    await first.handle.shutdown();
    expect(trace.getTracer('x').startSpan('after').isRecording()).toBe(false);
    const second = startTracing({ serviceName: 'two' });
    expect(second.handle).not.toBe(first.handle);
    emit('again');
    const [span] = await second.spans();
    expect(span?.resource.attributes['service.name']).toBe('two');
  });

  it('throws already_started instead of exporting nothing when another SDK is registered', () => {
    const other = new BasicTracerProvider();
    expect(trace.setGlobalTracerProvider(other)).toBe(true);
    try {
      let caught: unknown;
      try {
        setupTelemetry({ env: {}, logger: quiet, esmLoaderHook: false, exporter: 'none' });
      } catch (err) {
        caught = err;
      }
      expect(isTelemetryError(caught) && caught.code).toBe('already_started');
      expect((caught as Error).message).toMatch(/another OpenTelemetry SDK already registered/);
    } finally {
      trace.disable();
      context.disable();
      propagation.disable();
    }
  });

  it.each([
    [{ serviceNmae: 'typo' }, /unknown option "serviceNmae"/],
    [{ endpoint: 'collector:4318' }, /option "endpoint" must be an absolute http/],
    [{ samplerRatio: 2 }, /option "samplerRatio"/],
    [{ headers: { 'x-a': 'v\r\nx-b: smuggled' } }, /option "headers.x-a" must not contain CR, LF or NUL/],
    [{ exporter: 'zipkin' }, /option "exporter" must be "otlp", "console", "none" or a SpanExporter/],
    [
      { batch: { maxQueueSize: 10, maxExportBatchSize: 20 } },
      /maxExportBatchSize must not exceed maxQueueSize/,
    ],
    [{ instrumentations: ['mongodb'] }, /option "instrumentations.0"/],
  ])('rejects bad options with config_invalid naming the option: %j', (options, message) => {
    let caught: unknown;
    try {
      setupTelemetry({ ...(options as object), env: {}, logger: quiet });
    } catch (err) {
      caught = err;
    }
    expect(isTelemetryError(caught) && caught.code).toBe('config_invalid');
    expect((caught as Error).message).toMatch(message);
  });
});

describe('flush and shutdown', () => {
  afterEach(() => {
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('rejects with flush_timeout when the exporter does not answer within the deadline', async () => {
    const stuck: SpanExporter = { export: () => {}, shutdown: async () => {} };
    const handle = setupTelemetry({ exporter: stuck, env: {}, logger: quiet, esmLoaderHook: false });
    try {
      emit('stuck');
      await expect(handle.forceFlush({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'flush_timeout' });
      emit('stuck again');
      await expect(handle.shutdown({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'flush_timeout' });
    } finally {
      await handle.shutdown().catch(() => {});
    }
  });

  it('says at shutdown how many spans a full queue dropped, instead of losing them silently', async () => {
    let exported = 0;
    const slow: SpanExporter = {
      export: (spans: ReadableSpan[], done: (r: ExportResult) => void) => {
        setTimeout(() => {
          exported += spans.length;
          done({ code: 0 });
        }, 20);
      },
      shutdown: async () => {},
    };
    const warnings: string[] = [];
    const handle = setupTelemetry({
      exporter: slow,
      batch: { maxQueueSize: 2, maxExportBatchSize: 2 },
      env: {},
      esmLoaderHook: false,
      logger: { info: () => {}, warn: (m) => warnings.push(m) },
    });
    for (let i = 0; i < 10; i++) emit(`burst-${i}`);
    await handle.shutdown();
    expect(exported).toBeLessThan(10);
    expect(warnings).toEqual([
      `${10 - exported} spans were dropped because the queue was full (batch.maxQueueSize=2); raise batch.maxQueueSize or OTEL_BSP_MAX_QUEUE_SIZE`,
    ]);
  });

  it('rejects with export_failed when the exporter fails, keeping the cause', async () => {
    const failing: SpanExporter = {
      export: (_spans: ReadableSpan[], done: (r: ExportResult) => void) =>
        done({ code: 1, error: new Error('no') }),
      shutdown: async () => {},
    };
    const handle = setupTelemetry({ exporter: failing, env: {}, logger: quiet, esmLoaderHook: false });
    try {
      emit('lost');
      const err = await handle.forceFlush().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'export_failed', status: 503 });
      expect((err as Error).cause).toEqual(new Error('no'));
    } finally {
      await handle.shutdown().catch(() => {});
    }
  });
});

describe('OTLP/HTTP export (real exporter, real receiver)', () => {
  it('sends spans as JSON to the endpoint, with the configured and environment headers', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const handle = setupTelemetry({
        serviceName: 'svc',
        endpoint: 'http://127.0.0.1:1',
        headers: { 'x-tenant': 'from-options' },
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
          OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'authorization=Bearer%20abc',
        },
        logger: quiet,
        esmLoaderHook: false,
      });
      emit('exported', { k: 'v' });
      await handle.shutdown();
      const [span] = await receiver.waitForSpans(1);
      expect(span).toMatchObject({
        name: 'exported',
        attributes: { k: 'v' },
        resource: { 'service.name': 'svc' },
        parentSpanId: '',
      });
      expect(span?.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(receiver.requests[0]?.headers).toMatchObject({
        authorization: 'Bearer abc',
        'x-tenant': 'from-options',
        'content-type': 'application/json',
      });
    } finally {
      await receiver.close();
    }
  });

  it('reports export_failed when the collector refuses the spans', async () => {
    const receiver = await startOtlpReceiver();
    receiver.failWith(400);
    try {
      const handle = setupTelemetry({
        endpoint: receiver.baseUrl,
        env: {},
        logger: quiet,
        esmLoaderHook: false,
      });
      try {
        emit('refused');
        await expect(handle.forceFlush()).rejects.toMatchObject({ code: 'export_failed' });
      } finally {
        await handle.shutdown().catch(() => {});
      }
    } finally {
      await receiver.close();
    }
  });
});
