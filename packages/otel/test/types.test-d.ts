import type { Span } from '@opentelemetry/api';
import type { Request, RequestHandler } from 'express';
import type { DefaultState, Middleware } from 'koa';
import { describe, expectTypeOf, it } from 'vitest';
import {
  requestTelemetry as expressTelemetry,
  traceRequests as expressTraceRequests,
  recordErrors,
} from '../src/express.js';
import {
  type GrafanaDashboard,
  generateDashboards,
  parseSloDefinitions,
  type RequestTelemetry,
  type SloDefinitions,
  setupTelemetry,
  type TelemetryConfig,
  type TelemetryHandle,
  traced,
  withSpan,
} from '../src/index.js';
import { requestTelemetry as koaTelemetry, traceRequests as koaTraceRequests } from '../src/koa.js';
import { type OtlpReceiver, startOtlpReceiver } from '../src/testing.js';

describe('setupTelemetry', () => {
  it('returns a handle with a frozen, secret-free configuration', () => {
    const handle = setupTelemetry({
      serviceName: 'svc',
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.1,
    });
    expectTypeOf(handle).toEqualTypeOf<TelemetryHandle>();
    expectTypeOf(handle.shutdown).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(handle.config).toEqualTypeOf<TelemetryConfig>();
    expectTypeOf(handle.config.otlp).not.toHaveProperty('headers');
    expectTypeOf(handle.config.otlp.headerNames).toEqualTypeOf<readonly string[]>();
  });

  it('names exporters, samplers and instrumentations by their known values only', () => {
    // @ts-expect-error zipkin needs a package @amas/otel does not load
    setupTelemetry({ exporter: 'zipkin' });
    // @ts-expect-error jaeger_remote is not supported
    setupTelemetry({ sampler: 'jaeger_remote' });
    // @ts-expect-error mongodb is not an instrumentation @amas/otel loads
    setupTelemetry({ instrumentations: ['mongodb'] });
    setupTelemetry({
      instrumentations: ['http', 'express', 'koa', 'ioredis'],
      signals: { signals: ['SIGTERM'] },
    });
  });
});

describe('withSpan', () => {
  it('keeps the signature of the wrapped function, `this` included', () => {
    const f = withSpan('f', (a: string, b: number) => a.length + b);
    expectTypeOf(f).toEqualTypeOf<(this: unknown, a: string, b: number) => number>();
    const g = withSpan('g', async function (this: { base: number }, n: number) {
      return this.base + n;
    });
    expectTypeOf(g).parameters.toEqualTypeOf<[n: number]>();
    expectTypeOf(g).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(g).thisParameter.toEqualTypeOf<{ base: number }>();
    const h = withSpan('h', async function* (n: number) {
      yield n;
    });
    expectTypeOf(h).returns.toEqualTypeOf<AsyncGenerator<number, void, unknown>>();
  });

  it('types the attribute mapper with the arguments', () => {
    withSpan('f', (role: string, count: number) => `${role}:${count}`, {
      attributes: (role, count) => {
        expectTypeOf(role).toEqualTypeOf<string>();
        expectTypeOf(count).toEqualTypeOf<number>();
        return { role, count };
      },
    });
  });
});

describe('@traced()', () => {
  it('decorates methods with standard decorators and keeps their types', () => {
    class Policy {
      @traced()
      async decide(tool: string): Promise<boolean> {
        return tool.length > 0;
      }

      @traced({ name: 'policy.count', attributes: (items: string[]) => ({ n: items.length }) })
      count(items: string[]): number {
        return items.length;
      }
    }
    expectTypeOf(new Policy().decide).toEqualTypeOf<(tool: string) => Promise<boolean>>();
    expectTypeOf(new Policy().count).returns.toEqualTypeOf<number>();
  });
});

describe('adapters', () => {
  it('are plain Express and Koa middleware, and expose the request telemetry', () => {
    expectTypeOf(expressTraceRequests()).toEqualTypeOf<RequestHandler>();
    expectTypeOf(recordErrors()).toMatchTypeOf<(...args: never[]) => void>();
    expectTypeOf(koaTraceRequests({ ignore: ['/healthz'] })).toEqualTypeOf<Middleware>();
    expectTypeOf(expressTelemetry).returns.toEqualTypeOf<RequestTelemetry | undefined>();
    expectTypeOf(koaTelemetry).returns.toEqualTypeOf<RequestTelemetry | undefined>();
    expectTypeOf<RequestTelemetry['span']>().toEqualTypeOf<Span>();
  });

  it('type req.amas.otel and ctx.state.amas.otel through the shared AmasRequestState', () => {
    expectTypeOf<Request['amas']>().toEqualTypeOf<AmasRequestState | undefined>();
    expectTypeOf<NonNullable<Request['amas']>['otel']>().toEqualTypeOf<RequestTelemetry | undefined>();
    expectTypeOf<NonNullable<DefaultState['amas']>['otel']>().toEqualTypeOf<RequestTelemetry | undefined>();
  });
});

describe('SLO and testing helpers', () => {
  it('return typed definitions, dashboards and a receiver', () => {
    expectTypeOf(parseSloDefinitions).returns.toEqualTypeOf<SloDefinitions>();
    expectTypeOf(generateDashboards).returns.toEqualTypeOf<GrafanaDashboard[]>();
    expectTypeOf(startOtlpReceiver).returns.resolves.toEqualTypeOf<OtlpReceiver>();
  });
});
