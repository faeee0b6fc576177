import { createRequire } from 'node:module';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../test/support/redis-server.js';
import { isTelemetryError } from '../src/errors.js';
import { enableInstrumentations } from '../src/instrumentations.js';
import { withSpan } from '../src/with-span.js';
import { startTracing } from './helpers.js';

const require = createRequire(import.meta.url);
let redis: RedisServer;
let redisPort: number;

beforeAll(async () => {
  redis = await startRedis();
  redisPort = redis.port;
});
afterAll(async () => {
  await redis?.stop();
});

describe('the ioredis auto-instrumentation, named and installed', () => {
  it('traces Redis commands (against a real redis-server) under the active span, without the values', async () => {
    const t = startTracing({ instrumentations: ['ioredis'] });
    // Loaded after tracing started, as the instrumentation needs.
    const { Redis } = require('ioredis') as typeof import('ioredis');
    const client = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true });
    try {
      await client.connect();
      await withSpan('budget.spend', async () => {
        await client.set('budget:analyst', 'secret-value-42');
        return client.get('budget:analyst');
      })();
    } finally {
      client.disconnect();
    }
    const spans = await t.spans();
    const parent = spans.find((s) => s.name === 'budget.spend');
    const commands = spans.filter(
      (s) => s.instrumentationScope.name === '@opentelemetry/instrumentation-ioredis',
    );
    expect(commands.map((s) => s.name)).toEqual(expect.arrayContaining(['set', 'get']));
    for (const c of commands.filter((s) => s.name === 'set' || s.name === 'get')) {
      expect(c.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    }
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('secret-value-42');
  });
});

describe('instrumentations that cannot load', () => {
  const provider = trace.getTracerProvider();
  const without =
    (...missing: string[]) =>
    (id: string) =>
      missing.includes(id) ? undefined : require(id);

  it('throws config_invalid with the install command when named in code and not installed', () => {
    let caught: unknown;
    try {
      enableInstrumentations(['koa'], {
        provider,
        ignorePaths: [],
        esmLoaderHook: false,
        fromEnv: false,
        warn: () => {},
        load: without('@opentelemetry/instrumentation-koa'),
      });
    } catch (err) {
      caught = err;
    }
    expect(isTelemetryError(caught) && caught.code).toBe('config_invalid');
    expect((caught as Error).message).toBe(
      'instrumentation "koa" needs @opentelemetry/instrumentation-koa, which is not installed: run `npm install @opentelemetry/instrumentation-koa@0.71` or remove "koa" from the instrumentations',
    );
  });

  it('warns and carries on when named through OTEL_NODE_ENABLED_INSTRUMENTATIONS', () => {
    const warnings: string[] = [];
    const disable = enableInstrumentations(['koa'], {
      provider,
      ignorePaths: [],
      esmLoaderHook: false,
      fromEnv: true,
      warn: (m) => warnings.push(m),
      load: without('@opentelemetry/instrumentation'),
    });
    disable();
    expect(warnings).toEqual([
      'auto-instrumentation needs @opentelemetry/instrumentation, which is not installed: run `npm install @opentelemetry/instrumentation@0.223`; continuing without it',
    ]);
  });
});
