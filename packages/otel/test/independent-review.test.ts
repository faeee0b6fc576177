// Independent review: configuration from hostile or unusual `OTEL_*` values, shutdown races, span loss under
// bursts, and `withSpan`/`@traced` with the functions real code passes them. Everything goes through the
// public API (setupTelemetry, its handle and frozen config, withSpan, traced) and, for the wire, a real
// OTLP/HTTP receiver.
import { context, DiagLogLevel, diag, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTelemetryError } from '../src/errors.js';
import { setupTelemetry } from '../src/setup.js';
import { startOtlpReceiver } from '../src/testing.js';
import type { TelemetryOptions } from '../src/types.js';
import { traced, withSpan } from '../src/with-span.js';
import { byName, startTracing } from './helpers.js';

const SECRET = 's3cr3t-t0ken';

/** Starts (and shuts down at once) tracing with `env`, returning the config, start line and warnings. */
async function configWith(env: Record<string, string>, options: TelemetryOptions = {}) {
  const info: string[] = [];
  const warnings: string[] = [];
  const handle = setupTelemetry({
    exporter: 'none',
    esmLoaderHook: false,
    ...options,
    env,
    logger: { info: (m) => info.push(m), warn: (m) => warnings.push(m) },
  });
  await handle.shutdown();
  return { config: handle.config, info, warnings };
}

function emit(name: string): void {
  trace.getTracer('review').startSpan(name).end();
}

// The SDK reports misuse (a span ended twice, an operation on an ended span) through the diag logger.
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
afterEach(() => diag.disable());

describe('OTEL_* parsing against the specification', () => {
  it.each(['true', 'TRUE', 'tRuE', ' true '])('OTEL_SDK_DISABLED=%j turns tracing off', async (value) => {
    const { config, warnings } = await configWith({ OTEL_SDK_DISABLED: value });
    expect(config.enabled).toBe(false);
    expect(warnings).toEqual([]);
  });

  it.each(['', '   ', 'false', 'False'])(
    'OTEL_SDK_DISABLED=%j leaves tracing on without a warning',
    async (value) => {
      const { config, warnings } = await configWith({ OTEL_SDK_DISABLED: value });
      expect(config.enabled).toBe(true);
      expect(warnings).toEqual([]);
    },
  );

  it('treats every empty variable as unset: the options apply', async () => {
    const empty = Object.fromEntries(
      [
        'OTEL_SERVICE_NAME',
        'OTEL_RESOURCE_ATTRIBUTES',
        'OTEL_TRACES_EXPORTER',
        'OTEL_EXPORTER_OTLP_ENDPOINT',
        'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
        'OTEL_EXPORTER_OTLP_HEADERS',
        'OTEL_EXPORTER_OTLP_TIMEOUT',
        'OTEL_TRACES_SAMPLER',
        'OTEL_TRACES_SAMPLER_ARG',
        'OTEL_PROPAGATORS',
        'OTEL_BSP_MAX_QUEUE_SIZE',
        'OTEL_NODE_ENABLED_INSTRUMENTATIONS',
      ].map((k) => [k, '']),
    );
    const { config, warnings } = await configWith(empty, {
      serviceName: 'from-options',
      endpoint: 'http://opt:4318',
      samplerRatio: 0.5,
      batch: { maxQueueSize: 100 },
      propagators: ['tracecontext'],
    });
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({
      serviceName: 'from-options',
      exporters: [],
      otlp: { endpoint: 'http://opt:4318/v1/traces', headerNames: [], timeoutMs: 10_000 },
      sampler: { name: 'parentbased_traceidratio', ratio: 0.5 },
      propagators: ['tracecontext'],
      batch: { maxQueueSize: 100 },
      instrumentations: [],
    });
  });

  it.each([
    ['OTEL_BSP_MAX_QUEUE_SIZE', '-1'],
    ['OTEL_BSP_MAX_QUEUE_SIZE', 'lots'],
    ['OTEL_BSP_MAX_QUEUE_SIZE', '1e3'],
    ['OTEL_BSP_MAX_QUEUE_SIZE', '99999999999'],
    ['OTEL_BSP_SCHEDULE_DELAY', '5s'],
    ['OTEL_EXPORTER_OTLP_TIMEOUT', '0'],
    ['OTEL_TRACES_SAMPLER_ARG', '1.5'],
    ['OTEL_TRACES_SAMPLER_ARG', '-0.1'],
    ['OTEL_TRACES_SAMPLER_ARG', 'NaN'],
    ['OTEL_TRACES_SAMPLER_ARG', '0x1'],
    ['OTEL_TRACES_SAMPLER_ARG', 'Infinity'],
    ['OTEL_TRACES_SAMPLER', 'parentbased_jaeger_remote'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector:4318'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'ftp://collector'],
    ['OTEL_EXPORTER_OTLP_COMPRESSION', 'brotli'],
    ['OTEL_RESOURCE_ATTRIBUTES', 'team=%ZZ'],
    ['OTEL_RESOURCE_ATTRIBUTES', 'no-equals-sign'],
  ])('%s=%j is ignored with a warning, never a crash, and the option applies', async (name, value) => {
    const { config, warnings } = await configWith(
      { [name]: value },
      {
        samplerRatio: 0.25,
        endpoint: 'http://opt:4318',
        batch: { maxQueueSize: 100, scheduledDelayMs: 10 },
        timeoutMs: 1234,
        resourceAttributes: { team: 'core' },
      },
    );
    expect(warnings.join('\n')).toContain(name);
    expect(config).toMatchObject({
      sampler: { name: 'parentbased_traceidratio', ratio: 0.25 },
      otlp: { endpoint: 'http://opt:4318/v1/traces', timeoutMs: 1234, compression: 'none' },
      batch: { maxQueueSize: 100, scheduledDelayMs: 10 },
      resourceAttributes: { team: 'core' },
    });
  });

  it('reads OTEL_TRACES_SAMPLER_ARG=0 as a ratio of 0, not as unset', async () => {
    const { config } = await configWith(
      { OTEL_TRACES_SAMPLER: 'TraceIdRatio', OTEL_TRACES_SAMPLER_ARG: ' 0 ' },
      { samplerRatio: 1 },
    );
    expect(config.sampler).toEqual({ name: 'traceidratio', ratio: 0 });
  });

  it('appends v1/traces to the path of OTEL_EXPORTER_OTLP_ENDPOINT, even when the URL has a query', async () => {
    const cases: [string, string][] = [
      ['http://c:4318', 'http://c:4318/v1/traces'],
      ['http://c:4318/', 'http://c:4318/v1/traces'],
      ['https://c/otlp', 'https://c/otlp/v1/traces'],
      ['https://c/otlp/', 'https://c/otlp/v1/traces'],
      ['https://c/otlp?tenant=a', 'https://c/otlp/v1/traces?tenant=a'],
      ['https://c:4318?tenant=a', 'https://c:4318/v1/traces?tenant=a'],
    ];
    for (const [base, expected] of cases) {
      const { config } = await configWith({ OTEL_EXPORTER_OTLP_ENDPOINT: base });
      expect(config.otlp.endpoint, base).toBe(expected);
    }
    const fromOption = await configWith({}, { endpoint: 'https://c/otlp?tenant=a' });
    expect(fromOption.config.otlp.endpoint).toBe('https://c/otlp/v1/traces?tenant=a');
  });

  it('uses OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, path and query untouched, over the general one', async () => {
    const { config, info } = await configWith(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://general:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `https://c:4318/custom/path?api_key=${SECRET}`,
      },
      { exporter: 'otlp' },
    );
    expect(config.otlp.endpoint).toBe(`https://c:4318/custom/path?api_key=${SECRET}`);
    expect(info.join('\n')).toContain('endpoint=https://c:4318/custom/path?redacted');
    expect(info.join('\n')).not.toContain(SECRET);
  });

  it('takes OTEL_SERVICE_NAME over service.name in OTEL_RESOURCE_ATTRIBUTES, and percent-decodes attribute values', async () => {
    const { config } = await configWith(
      {
        OTEL_SERVICE_NAME: 'env-name',
        OTEL_RESOURCE_ATTRIBUTES:
          'service.name=attr-name, team = a%2Cb%3Dc ,note=100%25%20sure,eq=x=y,service.version=2.0',
      },
      { serviceName: 'option-name', serviceVersion: '1.0' },
    );
    expect(config.serviceName).toBe('env-name');
    expect(config.serviceVersion).toBe('2.0');
    expect(config.resourceAttributes).toMatchObject({
      'service.name': 'env-name',
      team: 'a,b=c',
      note: '100% sure',
      eq: 'x=y',
    });
  });
});

describe('the env option', () => {
  it('accepts process.env itself, and reads the variables from it', async () => {
    const saved = process.env.OTEL_SERVICE_NAME;
    process.env.OTEL_SERVICE_NAME = 'from-process-env';
    try {
      const { config } = await configWith(process.env as Record<string, string>);
      expect(config.serviceName).toBe('from-process-env');
    } finally {
      if (saved === undefined) delete process.env.OTEL_SERVICE_NAME;
      else process.env.OTEL_SERVICE_NAME = saved;
    }
  });

  it('refuses a variable that is not a string, naming the option', () => {
    expect(() =>
      setupTelemetry({
        env: { OTEL_BSP_MAX_QUEUE_SIZE: 100 } as unknown as Record<string, string>,
        logger: false,
        exporter: 'none',
      }),
    ).toThrow(/option "env" must be an object of string variables/);
  });
});

describe('OTLP headers from the environment', () => {
  it('sends percent-decoded headers on the wire and never prints their values', async () => {
    const receiver = await startOtlpReceiver();
    const info: string[] = [];
    const warnings: string[] = [];
    try {
      const handle = setupTelemetry({
        endpoint: receiver.baseUrl,
        esmLoaderHook: false,
        env: {
          OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${SECRET}%3D%3D, X-Tenant=a%2Cb ,x-smuggle=${SECRET}%0D%0Ax-evil:%201`,
        },
        logger: { info: (m) => info.push(m), warn: (m) => warnings.push(m) },
      });
      emit('with-headers');
      await handle.shutdown();
      await receiver.waitForSpans(1);
      expect(receiver.requests[0]?.headers).toMatchObject({
        authorization: `Bearer ${SECRET}==`,
        'x-tenant': 'a,b',
      });
      expect(`${info.join('\n')}\n${warnings.join('\n')}`).not.toContain(SECRET);
      expect(info.join('\n')).toContain('headers=authorization,x-tenant');
      expect(warnings.join('\n')).toMatch(/header "x-smuggle" is ignored/);
    } finally {
      await receiver.close();
    }
  });

  it.each([
    ['a non-Latin-1 character', 'x-api-key=caf%E2%82%AC'],
    ['a control character', 'x-api-key=a%01b'],
    ['a DEL character', 'x-api-key=a%7Fb'],
  ])('drops a header whose decoded value has %s, instead of failing every export', async (_what, value) => {
    const receiver = await startOtlpReceiver();
    const warnings: string[] = [];
    try {
      const handle = setupTelemetry({
        endpoint: receiver.baseUrl,
        esmLoaderHook: false,
        env: { OTEL_EXPORTER_OTLP_HEADERS: `${value},x-ok=1` },
        logger: { info: () => {}, warn: (m) => warnings.push(m) },
      });
      emit('still-exported');
      const shutdown = handle.shutdown();
      await expect(shutdown).resolves.toBeUndefined();
      expect(handle.config.otlp.headerNames).toEqual(['x-ok']);
      expect(await receiver.waitForSpans(1, { timeoutMs: 5000 })).toHaveLength(1);
      expect(receiver.requests[0]?.headers['x-ok']).toBe('1');
      expect(warnings.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_HEADERS: header "x-api-key" is ignored/);
    } finally {
      await receiver.close();
    }
  });

  it('keeps a header it dropped from process.env out of the export (the OTLP exporter reads it too)', async () => {
    const receiver = await startOtlpReceiver();
    const saved = process.env.OTEL_EXPORTER_OTLP_HEADERS;
    process.env.OTEL_EXPORTER_OTLP_HEADERS = 'x-api-key=caf%E2%82%AC,x-smuggle=1%0D%0Ax-evil:%201,x-ok=1';
    try {
      const handle = setupTelemetry({
        endpoint: receiver.baseUrl,
        esmLoaderHook: false,
        env: process.env,
        logger: false,
      });
      emit('despite-bad-headers');
      await expect(handle.shutdown()).resolves.toBeUndefined();
      expect(await receiver.waitForSpans(1, { timeoutMs: 5000 })).toHaveLength(1);
      expect(receiver.requests[0]?.headers['x-ok']).toBe('1');
      expect(receiver.requests[0]?.headers['x-api-key']).toBeUndefined();
      expect(receiver.requests[0]?.headers['x-smuggle']).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
      else process.env.OTEL_EXPORTER_OTLP_HEADERS = saved;
      await receiver.close();
    }
  });

  it('sends only the headers of the `env` it was given, not those of process.env', async () => {
    const receiver = await startOtlpReceiver();
    const saved = process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS;
    process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS = `authorization=Bearer%20${SECRET}`;
    try {
      const handle = setupTelemetry({
        endpoint: receiver.baseUrl,
        esmLoaderHook: false,
        env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=mine' },
        logger: false,
      });
      emit('own-env');
      await handle.shutdown();
      await receiver.waitForSpans(1);
      expect(receiver.requests[0]?.headers['x-tenant']).toBe('mine');
      expect(receiver.requests[0]?.headers.authorization).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS;
      else process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS = saved;
      await receiver.close();
    }
  });

  it('refuses a header option whose value a Node.js client cannot send, naming it', () => {
    let caught: unknown;
    try {
      const started = setupTelemetry({
        headers: { 'x-api-key': 'caf€' },
        env: {},
        logger: false,
        esmLoaderHook: false,
      });
      void started.shutdown().catch(() => {});
    } catch (err) {
      caught = err;
    }
    expect(isTelemetryError(caught) && caught.code).toBe('config_invalid');
    expect((caught as Error).message).toMatch(/headers\.x-api-key/);
  });
});

describe('shutdown and flush races', () => {
  afterEach(() => {
    trace.disable();
    context.disable();
    propagation.disable();
  });

  function countingExporter(delayMs = 0) {
    const exported: string[] = [];
    const exporter: SpanExporter = {
      export(spans: ReadableSpan[], done: (r: ExportResult) => void) {
        setTimeout(() => {
          exported.push(...spans.map((s) => s.name));
          done({ code: 0 });
        }, delayMs);
      },
      shutdown: async () => {},
    };
    return { exporter, exported };
  }

  it('returns the same settled shutdown when called twice, and exports each span once', async () => {
    const { exporter, exported } = countingExporter(5);
    const handle = setupTelemetry({ exporter, env: {}, logger: false, esmLoaderHook: false });
    emit('once');
    const first = handle.shutdown();
    const second = handle.shutdown();
    expect(second).toBe(first);
    await expect(Promise.all([first, second])).resolves.toEqual([undefined, undefined]);
    expect(exported).toEqual(['once']);
  });

  it('settles forceFlush and shutdown called at the same time, exporting each span once', async () => {
    const { exporter, exported } = countingExporter(10);
    const handle = setupTelemetry({ exporter, env: {}, logger: false, esmLoaderHook: false });
    for (let i = 0; i < 5; i++) emit(`race-${i}`);
    await expect(
      Promise.all([handle.forceFlush(), handle.shutdown(), handle.forceFlush()]),
    ).resolves.toBeDefined();
    expect(exported.sort()).toEqual(['race-0', 'race-1', 'race-2', 'race-3', 'race-4']);
    await expect(handle.forceFlush({ timeoutMs: 1000 })).resolves.toBeUndefined();
  });

  it('waits for a flush given an unbounded deadline (Infinity) instead of timing out at once', async () => {
    const { exporter, exported } = countingExporter(20);
    const handle = setupTelemetry({ exporter, env: {}, logger: false, esmLoaderHook: false });
    emit('patient');
    await expect(handle.forceFlush({ timeoutMs: Number.POSITIVE_INFINITY })).resolves.toBeUndefined();
    expect(exported).toEqual(['patient']);
    await handle.shutdown({ timeoutMs: Number.POSITIVE_INFINITY });
  });

  it.each([
    ['timeoutMs', { timeoutMs: 2 ** 31 }],
    ['batch.exportTimeoutMs', { batch: { exportTimeoutMs: 2 ** 31 } }],
    ['batch.scheduledDelayMs', { batch: { scheduledDelayMs: 2 ** 31 } }],
    ['signals.timeoutMs', { signals: { timeoutMs: 2 ** 31 } }],
  ])('refuses %s beyond what a Node.js timer can hold (it would fire at once)', (name, options) => {
    let caught: unknown;
    try {
      const started = setupTelemetry({
        ...(options as TelemetryOptions),
        env: {},
        logger: false,
        esmLoaderHook: false,
      });
      void started.shutdown().catch(() => {});
    } catch (err) {
      caught = err;
    }
    expect(isTelemetryError(caught) && caught.code).toBe('config_invalid');
    expect((caught as Error).message).toContain(`"${name}"`);
  });

  it('counts every span of a burst larger than the queue: received + reported dropped = emitted', async () => {
    const receiver = await startOtlpReceiver();
    const warnings: string[] = [];
    try {
      const handle = setupTelemetry({
        endpoint: receiver.baseUrl,
        batch: { maxQueueSize: 64, maxExportBatchSize: 64, scheduledDelayMs: 60_000 },
        esmLoaderHook: false,
        env: {},
        logger: { info: () => {}, warn: (m) => warnings.push(m) },
      });
      const burst = 1000;
      for (let i = 0; i < burst; i++) emit(`burst-${i}`);
      await handle.shutdown();
      const dropped = Number(
        /(\d+) spans were dropped because the queue was full/.exec(warnings.join('\n'))?.[1],
      );
      expect(dropped).toBeGreaterThan(0);
      expect(receiver.spans.length + dropped).toBe(burst);
    } finally {
      await receiver.close();
    }
  });
});

describe('withSpan with the functions real code passes', () => {
  it('lets a never-settling promise pend without holding the caller or leaking its context', async () => {
    const t = startTracing();
    const hang = withSpan('hangs', () => new Promise<never>(() => {}));
    const pending = hang();
    const outcome = await Promise.race([
      pending,
      new Promise((r) => setTimeout(() => r('still pending'), 20)),
    ]);
    expect(outcome).toBe('still pending');
    expect(trace.getActiveSpan()).toBeUndefined();
    withSpan('after', () => 1)();
    expect((await t.spans()).map((s) => s.name)).toEqual(['after']);
  });

  it('resolves with the value of a minimal thenable whose then() returns nothing', async () => {
    const t = startTracing();
    const lazy = withSpan('lazy.query', () => ({
      // A hand-written thenable, as query builders and old promise libraries have: then() returns nothing.
      // biome-ignore lint/suspicious/noThenProperty: the thenable is what is under test
      then(resolve: (v: number) => void) {
        setTimeout(() => resolve(42), 1);
      },
    }));
    expect(await lazy()).toBe(42);
    const [span] = await t.spans();
    expect(span?.name).toBe('lazy.query');
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('resolves a synchronous thenable, and calls its then() only once', async () => {
    const t = startTracing();
    let calls = 0;
    const sync = withSpan('sync.thenable', () => ({
      // biome-ignore lint/suspicious/noThenProperty: the thenable is what is under test
      then(resolve: (v: string) => void) {
        calls++;
        resolve('now');
      },
    }));
    expect(await sync()).toBe('now');
    expect(calls).toBe(1);
    expect((await t.spans()).map((s) => s.name)).toEqual(['sync.thenable']);
  });

  it('ends the span, with the error, when a thenable then() throws, and rejects with that error', async () => {
    const t = startTracing();
    const broken = new Error('then exploded');
    const bad = withSpan('bad.thenable', () => ({
      // biome-ignore lint/suspicious/noThenProperty: the thenable is what is under test
      then() {
        throw broken;
      },
    }));
    await expect(Promise.resolve().then(() => bad())).rejects.toBe(broken);
    const [span] = await t.spans();
    expect(span?.name).toBe('bad.thenable');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('ends the span once when a thenable calls both of its callbacks', async () => {
    const t = startTracing();
    const twice = withSpan('twice', () => ({
      // biome-ignore lint/suspicious/noThenProperty: the thenable is what is under test
      then(resolve: (v: number) => void, reject: (e: unknown) => void) {
        resolve(1);
        reject(new Error('late'));
        resolve(2);
      },
    }));
    expect(await twice()).toBe(1);
    const spans = await t.spans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.status.code).toBe(SpanStatusCode.UNSET);
    expect(diagnostics.filter((m) => /ended/i.test(m))).toEqual([]);
  });

  it.each([
    ['a string', 'failed'],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['a plain object', { reason: 'nope' }],
  ])('rethrows %s unchanged, sync and async, and marks the span as an error', async (_what, value) => {
    const t = startTracing();
    let caught: unknown = 'nothing';
    try {
      withSpan('throws.sync', () => {
        throw value;
      })();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBe(value);
    await expect(
      withSpan('throws.async', async () => {
        throw value;
      })(),
    ).rejects.toBe(value);
    const spans = await t.spans();
    for (const name of ['throws.sync', 'throws.async']) {
      const s = byName(spans, name);
      expect(s.status.code).toBe(SpanStatusCode.ERROR);
      expect(s.attributes['error.type']).toBe(value === null ? 'object' : typeof value);
    }
  });

  it('rethrows the original error even when reading it throws (hostile getters)', async () => {
    const t = startTracing();
    const hostile = new Error('original');
    for (const key of ['stack', 'message', 'name', 'code']) {
      Object.defineProperty(hostile, key, {
        get() {
          throw new Error(`getter ${key}`);
        },
      });
    }
    let caught: unknown;
    try {
      withSpan('hostile', () => {
        throw hostile;
      })();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBe(hostile);
    await expect(
      withSpan('hostile.async', async () => {
        throw hostile;
      })(),
    ).rejects.toBe(hostile);
    const spans = await t.spans();
    expect(spans.map((s) => s.name).sort()).toEqual(['hostile', 'hostile.async']);
    expect(spans.every((s) => s.status.code === SpanStatusCode.ERROR)).toBe(true);
  });

  it('ends the span of an async generator closed with return() mid-iteration, and records a throw() into it', async () => {
    const t = startTracing();
    let cleanedUp = false;
    const gen = withSpan('agen', async function* () {
      try {
        yield 1;
        yield 2;
      } finally {
        cleanedUp = true;
      }
    });
    const it1 = gen();
    expect(await it1.next()).toEqual({ value: 1, done: false });
    expect(await it1.return(undefined)).toEqual({ value: undefined, done: true });
    expect(cleanedUp).toBe(true);
    const it2 = gen();
    await it2.next();
    const injected = new Error('consumer gave up');
    await expect(it2.throw(injected)).rejects.toBe(injected);
    const spans = (await t.spans()).filter((s) => s.name === 'agen');
    expect(spans).toHaveLength(2);
    expect(spans.map((s) => s.status.code).sort()).toEqual([SpanStatusCode.UNSET, SpanStatusCode.ERROR]);
  });

  it('keeps the span of a sync generator open for the iteration, nesting the work done inside', async () => {
    const t = startTracing();
    const openAtTheEnd: boolean[] = [];
    const gen = withSpan('sgen', function* (n: number) {
      for (let i = 0; i < n; i++) {
        withSpan('sgen.step', () => i)();
        yield i;
      }
      // Still inside the generator's span, and that span has not ended yet.
      openAtTheEnd.push(trace.getActiveSpan()?.isRecording() === true);
    });
    expect([...gen(3)]).toEqual([0, 1, 2]);
    expect(openAtTheEnd).toEqual([true]);
    const spans = await t.spans();
    const outer = byName(spans, 'sgen');
    const steps = spans.filter((s) => s.name === 'sgen.step');
    expect(steps).toHaveLength(3);
    expect(steps.every((s) => s.parentSpanContext?.spanId === outer.spanContext().spanId)).toBe(true);
    expect(outer.ended).toBe(true);
  });

  it('ends the span of a sync generator abandoned with break, and records an error thrown while iterating', async () => {
    const t = startTracing();
    const naturals = withSpan('naturals', function* () {
      for (let i = 0; ; i++) yield i;
    });
    for (const n of naturals()) if (n === 2) break;
    const failing = withSpan('failing.gen', function* () {
      yield 1;
      throw new TypeError('bad row');
    });
    expect(() => [...failing()]).toThrow('bad row');
    const spans = await t.spans();
    expect(byName(spans, 'naturals').status.code).toBe(SpanStatusCode.UNSET);
    expect(byName(spans, 'failing.gen').status).toEqual({ code: SpanStatusCode.ERROR, message: 'bad row' });
  });

  it('keeps `this` through call, apply, bind, and when unsampled', async () => {
    const t = startTracing({ sampler: 'always_off' });
    const self = { base: 1 };
    const add = withSpan('add', function (this: { base: number }, n: number) {
      return this.base + n;
    });
    expect(add.call(self, 1)).toBe(2);
    expect(add.apply(self, [2])).toBe(3);
    expect(add.bind(self)(3)).toBe(4);
    expect(await t.spans()).toEqual([]);
  });
});

// Standard decorators are compiled by TypeScript itself, as in users' code (see traced.test.ts).
function compile<T>(source: string): T {
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS },
  });
  const module = { exports: {} as T };
  new Function('module', 'exports', 'traced', outputText)(module, module.exports, traced);
  return module.exports;
}

describe('@traced() and `this`', () => {
  const { Tools } = compile<{
    Tools: new () => { normalise(name: string): string; describe(): string };
  }>(`
    class Tools {
      label = 'tools';
      @traced()
      normalise(name) { return name.trim().toLowerCase(); }
      @traced()
      describe() { return this.label; }
    }
    module.exports = { Tools };
  `);

  it('still calls a method that does not use `this` when it is called detached', async () => {
    const t = startTracing();
    const { normalise } = new Tools();
    expect(normalise('  Search ')).toBe('search');
    expect(['x '].map(new Tools().normalise)).toEqual(['x']);
    const spans = await t.spans();
    expect(spans).toHaveLength(2);
    expect(spans.every((s) => s.name.endsWith('.normalise'))).toBe(true);
  });

  it('calls the method with a prototype-less `this`', async () => {
    const t = startTracing();
    const bare = Object.assign(Object.create(null) as object, { label: 'bare' });
    expect(Tools.prototype.describe.call(bare)).toBe('bare');
    expect(await t.spans()).toHaveLength(1);
  });

  it('leaves the error of a method that needs `this` to the method itself', () => {
    startTracing();
    const { describe: detached } = new Tools();
    expect(() => detached()).toThrow(TypeError);
    expect(() => detached()).toThrow(/label/);
  });
});
