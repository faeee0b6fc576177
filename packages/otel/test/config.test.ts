import { describe, expect, it } from 'vitest';
import { describeConfig, resolveConfig } from '../src/config.js';
import { parseTelemetryOptions } from '../src/options.js';
import type { TelemetryOptions } from '../src/types.js';

function resolve(options: TelemetryOptions, env: Record<string, string | undefined> = {}) {
  const warnings: string[] = [];
  const { config, runtime } = resolveConfig(parseTelemetryOptions(options), env, (m) => warnings.push(m));
  return { config, runtime, warnings };
}

describe('OTEL_SDK_DISABLED', () => {
  it.each([
    ['true', false],
    ['TRUE', false],
    ['True', false],
    ['false', true],
    ['FALSE', true],
    ['', true],
    [undefined, true],
  ])('OTEL_SDK_DISABLED=%j leaves tracing enabled=%s', (value, enabled) => {
    const { config, warnings } = resolve({}, { OTEL_SDK_DISABLED: value });
    expect(config.enabled).toBe(enabled);
    expect(warnings).toEqual([]);
  });

  it('reads any other value as false (enabled) and says so', () => {
    const { config, warnings } = resolve({}, { OTEL_SDK_DISABLED: 'yes' });
    expect(config.enabled).toBe(true);
    expect(warnings.join('\n')).toMatch(/OTEL_SDK_DISABLED="yes" is read as false/);
  });

  it('turns tracing off even when the options say enabled, and only "true" does', () => {
    expect(resolve({ enabled: true }, { OTEL_SDK_DISABLED: 'true' }).config.enabled).toBe(false);
    expect(resolve({ enabled: false }, { OTEL_SDK_DISABLED: 'false' }).config.enabled).toBe(false);
  });
});

describe('service name and resource', () => {
  it('takes OTEL_SERVICE_NAME over service.name in OTEL_RESOURCE_ATTRIBUTES over the option', () => {
    const opts = { serviceName: 'from-options' };
    expect(resolve(opts).config.serviceName).toBe('from-options');
    expect(resolve(opts, { OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs' }).config.serviceName).toBe(
      'from-attrs',
    );
    const both = resolve(opts, {
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs',
      OTEL_SERVICE_NAME: 'env',
    });
    expect(both.config.serviceName).toBe('env');
    expect(both.config.resourceAttributes['service.name']).toBe('env');
    expect(both.config.sources['service.name']).toBe('OTEL_SERVICE_NAME');
  });

  it('defaults to unknown_service:node', () => {
    expect(resolve({}).config.serviceName).toBe('unknown_service:node');
  });

  it('merges resource attributes, the environment winning per key, values percent-decoded', () => {
    const { config } = resolve(
      { serviceVersion: '1.0.0', environment: 'staging', resourceAttributes: { team: 'a', region: 'eu' } },
      { OTEL_RESOURCE_ATTRIBUTES: 'team=b%20team, service.version=2.0.0,deployment.environment.name=prod' },
    );
    expect(config.resourceAttributes).toMatchObject({
      team: 'b team',
      region: 'eu',
      'service.version': '2.0.0',
      'deployment.environment.name': 'prod',
    });
    expect(config.serviceVersion).toBe('2.0.0');
    expect(config.environment).toBe('prod');
  });

  it('discards a malformed OTEL_RESOURCE_ATTRIBUTES entirely, with a warning', () => {
    const { config, warnings } = resolve(
      { resourceAttributes: { team: 'a' } },
      { OTEL_RESOURCE_ATTRIBUTES: 'team=b,broken,x=%E0%A4%A' },
    );
    expect(config.resourceAttributes.team).toBe('a');
    expect(warnings.join('\n')).toMatch(/OTEL_RESOURCE_ATTRIBUTES is ignored/);
  });
});

describe('exporter endpoint, headers, timeout, compression', () => {
  it('uses the signal-specific URL as is and appends v1/traces to the general one', () => {
    expect(resolve({}).config.otlp.endpoint).toBe('http://localhost:4318/v1/traces');
    expect(resolve({ endpoint: 'http://c:4318' }).config.otlp.endpoint).toBe('http://c:4318/v1/traces');
    expect(resolve({ endpoint: 'http://c:4318/base/' }).config.otlp.endpoint).toBe(
      'http://c:4318/base/v1/traces',
    );
    expect(resolve({ tracesEndpoint: 'http://c:4318/custom' }).config.otlp.endpoint).toBe(
      'http://c:4318/custom',
    );
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' };
    expect(resolve({ tracesEndpoint: 'http://c/x' }, env).config.otlp.endpoint).toBe(
      'http://env:4318/v1/traces',
    );
    expect(
      resolve({}, { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://specific:4318/t' }).config.otlp
        .endpoint,
    ).toBe('http://specific:4318/t');
  });

  it('ignores an endpoint variable that is not an http(s) URL', () => {
    const { config, warnings } = resolve(
      { endpoint: 'http://opt:4318' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' },
    );
    expect(config.otlp.endpoint).toBe('http://opt:4318/v1/traces');
    expect(warnings.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT is ignored/);
  });

  it('merges headers per name: options, then the general variable, then the traces variable', () => {
    const { runtime, config } = resolve(
      { headers: { Authorization: 'opt', 'x-a': '1' } },
      {
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20general,x-b=2',
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-b=3',
      },
    );
    expect(runtime.headers).toEqual({ authorization: 'Bearer general', 'x-a': '1', 'x-b': '3' });
    expect(config.otlp.headerNames).toEqual(['authorization', 'x-a', 'x-b']);
    expect(JSON.stringify(config)).not.toContain('Bearer');
  });

  it('drops an environment header that would smuggle another header', () => {
    const { runtime, warnings } = resolve({}, { OTEL_EXPORTER_OTLP_HEADERS: 'x-a=1%0D%0Ax-evil:%201,x-b=2' });
    expect(runtime.headers).toEqual({ 'x-b': '2' });
    expect(warnings.join('\n')).toMatch(/header "x-a" is ignored/);
  });

  it('reads timeouts and compression, signal-specific first; ignores bad values with a warning', () => {
    expect(
      resolve(
        { timeoutMs: 1000, compression: 'none' },
        { OTEL_EXPORTER_OTLP_TIMEOUT: '2000', OTEL_EXPORTER_OTLP_COMPRESSION: 'GZIP' },
      ).config.otlp,
    ).toMatchObject({ timeoutMs: 2000, compression: 'gzip' });
    expect(
      resolve({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '2000', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '3000' }).config
        .otlp.timeoutMs,
    ).toBe(3000);
    const bad = resolve({ timeoutMs: 1000 }, { OTEL_EXPORTER_OTLP_TIMEOUT: '10s' });
    expect(bad.config.otlp.timeoutMs).toBe(1000);
    expect(bad.warnings.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_TIMEOUT is ignored/);
  });

  it('warns that only http/json is spoken', () => {
    const { warnings } = resolve({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(warnings.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_PROTOCOL=grpc is ignored/);
    expect(resolve({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).warnings).toEqual([]);
  });
});

describe('exporters, sampler, propagators', () => {
  it('reads OTEL_TRACES_EXPORTER as a list; none means no exporter', () => {
    expect(resolve({}).config.exporters).toEqual(['otlp']);
    expect(resolve({ exporter: 'console' }).config.exporters).toEqual(['console']);
    expect(
      resolve({ exporter: 'console' }, { OTEL_TRACES_EXPORTER: 'otlp, console' }).config.exporters,
    ).toEqual(['otlp', 'console']);
    expect(resolve({}, { OTEL_TRACES_EXPORTER: 'none' }).config.exporters).toEqual([]);
    const zipkin = resolve({}, { OTEL_TRACES_EXPORTER: 'zipkin' });
    expect(zipkin.config.exporters).toEqual(['otlp']);
    expect(zipkin.warnings.join('\n')).toMatch(/"zipkin" needs a package/);
  });

  it('takes the sampler and its ratio from the environment over the options', () => {
    expect(resolve({}).config.sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 1 });
    expect(resolve({ samplerRatio: 0.5 }, { OTEL_TRACES_SAMPLER_ARG: '0.25' }).config.sampler.ratio).toBe(
      0.25,
    );
    expect(
      resolve(
        { sampler: 'always_on' },
        { OTEL_TRACES_SAMPLER: 'TraceIdRatio', OTEL_TRACES_SAMPLER_ARG: '.1' },
      ).config.sampler,
    ).toEqual({ name: 'traceidratio', ratio: 0.1 });
  });

  it('ignores an out-of-range ratio and an unknown sampler, with warnings', () => {
    const r = resolve({ samplerRatio: 0.5 }, { OTEL_TRACES_SAMPLER_ARG: '1.5', OTEL_TRACES_SAMPLER: 'xray' });
    expect(r.config.sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 0.5 });
    expect(r.warnings).toHaveLength(2);
  });

  it('reads OTEL_PROPAGATORS; none means no propagator', () => {
    expect(resolve({}).config.propagators).toEqual(['tracecontext', 'baggage']);
    expect(resolve({}, { OTEL_PROPAGATORS: 'tracecontext' }).config.propagators).toEqual(['tracecontext']);
    expect(resolve({}, { OTEL_PROPAGATORS: 'none' }).config.propagators).toEqual([]);
    expect(resolve({}, { OTEL_PROPAGATORS: 'b3,tracecontext' }).warnings.join()).toMatch(
      /"b3" needs a package/,
    );
  });
});

describe('batch, instrumentations, signals', () => {
  it('reads OTEL_BSP_* over the options and clamps a batch larger than the queue', () => {
    const r = resolve(
      { batch: { maxQueueSize: 100, scheduledDelayMs: 10 } },
      { OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500', OTEL_BSP_SCHEDULE_DELAY: '0' },
    );
    expect(r.config.batch).toEqual({
      maxQueueSize: 100,
      maxExportBatchSize: 100,
      scheduledDelayMs: 0,
      exportTimeoutMs: 30_000,
    });
    expect(r.warnings.join()).toMatch(/exceeds batch.maxQueueSize/);
  });

  it('takes OTEL_NODE_ENABLED_INSTRUMENTATIONS over the options and removes the disabled ones', () => {
    expect(resolve({ instrumentations: ['http'] }).config.instrumentations).toEqual(['http']);
    expect(
      resolve({ instrumentations: ['http'] }, { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'express,http,koa' })
        .config.instrumentations,
    ).toEqual(['express', 'http', 'koa']);
    expect(
      resolve({ instrumentations: ['http', 'koa'] }, { OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'koa' }).config
        .instrumentations,
    ).toEqual(['http']);
  });

  it('turns signal handling on with defaults, or with the given signals and deadline', () => {
    expect(resolve({}).config.signals).toEqual([]);
    expect(resolve({ signals: true }).config).toMatchObject({
      signals: ['SIGTERM', 'SIGINT'],
      signalTimeoutMs: 5000,
    });
    expect(resolve({ signals: { signals: ['SIGTERM'], timeoutMs: 100 } }).config).toMatchObject({
      signals: ['SIGTERM'],
      signalTimeoutMs: 100,
    });
  });
});

describe('the resolved configuration', () => {
  it('is deeply frozen', () => {
    const { config } = resolve({ resourceAttributes: { a: 'b' } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.otlp)).toBe(true);
    expect(Object.isFrozen(config.resourceAttributes)).toBe(true);
    expect(Object.isFrozen(config.batch)).toBe(true);
  });

  it('treats an empty variable as unset', () => {
    const { config, warnings } = resolve(
      { serviceName: 'svc', samplerRatio: 0.5 },
      { OTEL_SERVICE_NAME: '', OTEL_TRACES_SAMPLER_ARG: '  ', OTEL_EXPORTER_OTLP_ENDPOINT: '' },
    );
    expect(config.serviceName).toBe('svc');
    expect(config.sampler.ratio).toBe(0.5);
    expect(warnings).toEqual([]);
  });

  it('is described in one line without header values, URL credentials or query strings', () => {
    const { config } = resolve(
      { serviceName: 'orders', tracesEndpoint: 'https://user:pw@collector:4318/v1/traces?token=abc' },
      { OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s3cr3t', OTEL_TRACES_SAMPLER_ARG: '0.1' },
    );
    const line = describeConfig(config);
    expect(line).not.toContain('\n');
    expect(line).toMatch(/^tracing on service\.name=orders /);
    expect(line).toContain('headers=api-key');
    expect(line).toContain('sampler=parentbased_traceidratio(0.1)');
    expect(line).toContain('from-env=OTEL_EXPORTER_OTLP_HEADERS,OTEL_TRACES_SAMPLER_ARG');
    for (const secret of ['s3cr3t', 'pw', 'abc']) expect(line).not.toContain(secret);
  });

  it('is described as off when disabled', () => {
    expect(describeConfig(resolve({}, { OTEL_SDK_DISABLED: 'true' }).config)).toBe(
      'tracing off (OTEL_SDK_DISABLED=true)',
    );
  });
});
