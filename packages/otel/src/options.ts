import * as z from 'zod';
import { isHttpUrl } from './env.js';
import { TelemetryError } from './errors.js';
import type { TelemetryOptions, TraceRequestsOptions } from './types.js';

export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export const PROPAGATORS = ['tracecontext', 'baggage'] as const;
export const INSTRUMENTATIONS = ['http', 'express', 'koa', 'ioredis'] as const;
export const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export const DEFAULT_IGNORE_PATHS: readonly string[] = Object.freeze([
  '/health',
  '/healthz',
  '/livez',
  '/readyz',
  '/metrics',
]);

const hasMethods =
  (...names: string[]) =>
  (value: unknown): boolean =>
    typeof value === 'object' &&
    value !== null &&
    names.every((n) => typeof (value as Record<string, unknown>)[n] === 'function');

const httpUrl = z.string().refine(isHttpUrl, { error: 'must be an absolute http:// or https:// URL' });
// A Node.js timer holds at most 2^31-1 ms; beyond it, it fires after 1 ms (a deadline that always passes).
const MAX_TIMER_MS = 2 ** 31 - 1;
const positiveInt = z.number().int().positive();
const timerMs = positiveInt.max(MAX_TIMER_MS);
/**
 * What a Node.js client refuses in a header value (its own check): CR or LF would smuggle another header,
 * and any other control character or a character beyond Latin-1 makes every export request throw.
 */
export const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const headerValue = z.string().refine((v) => !INVALID_HEADER_VALUE.test(v), {
  error: 'must not contain CR, LF or NUL, nor any other control character or character beyond Latin-1',
});
const headerName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'must be an HTTP token' });
const pathList = z.array(z.union([z.string().startsWith('/'), z.instanceof(RegExp)]), {
  error: 'must be a list of paths starting with "/" or regular expressions',
});

const telemetryOptions = z.strictObject({
  enabled: z.boolean().optional(),
  serviceName: z.string().min(1).optional(),
  serviceVersion: z.string().min(1).optional(),
  environment: z.string().min(1).optional(),
  resourceAttributes: z.record(z.string().min(1), z.union([z.string(), z.number(), z.boolean()])).optional(),
  exporter: z
    .union([z.enum(['otlp', 'console', 'none']), z.custom((v) => hasMethods('export', 'shutdown')(v))], {
      error: 'must be "otlp", "console", "none" or a SpanExporter (an object with export() and shutdown())',
    })
    .optional(),
  endpoint: httpUrl.optional(),
  tracesEndpoint: httpUrl.optional(),
  headers: z.record(headerName, headerValue).optional(),
  timeoutMs: timerMs.optional(),
  compression: z.enum(['none', 'gzip']).optional(),
  sampler: z
    .union([z.enum(SAMPLERS), z.custom((v) => hasMethods('shouldSample')(v))], {
      error: `must be one of ${SAMPLERS.join(', ')} or a Sampler (an object with shouldSample())`,
    })
    .optional(),
  samplerRatio: z.number().min(0).max(1).optional(),
  propagators: z.array(z.enum(PROPAGATORS)).optional(),
  batch: z
    .strictObject({
      maxQueueSize: positiveInt.optional(),
      maxExportBatchSize: positiveInt.optional(),
      scheduledDelayMs: z.number().int().nonnegative().max(MAX_TIMER_MS).optional(),
      exportTimeoutMs: timerMs.optional(),
    })
    .refine((b) => b.maxExportBatchSize === undefined || b.maxExportBatchSize <= (b.maxQueueSize ?? 8192), {
      error: 'maxExportBatchSize must not exceed maxQueueSize',
    })
    .optional(),
  instrumentations: z.array(z.enum(INSTRUMENTATIONS)).optional(),
  ignorePaths: pathList.optional(),
  esmLoaderHook: z.boolean().optional(),
  signals: z
    .union([
      z.boolean(),
      z.strictObject({
        signals: z.array(z.enum(SIGNALS)).optional(),
        timeoutMs: timerMs.optional(),
      }),
    ])
    .optional(),
  flushOnExit: z.boolean().optional(),
  logger: z
    .union([z.literal(false), z.custom((v) => hasMethods('info', 'warn')(v))], {
      error: 'must be false or an object with info() and warn()',
    })
    .optional(),
  // `process.env` is not a plain object (a record schema refuses it), so the shape is checked by hand.
  env: z
    .custom<Record<string, string | undefined>>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        !Array.isArray(v) &&
        Object.values(v).every((x) => x === undefined || typeof x === 'string'),
      { error: 'must be an object of string variables, such as process.env' },
    )
    .optional(),
});

const traceRequestsOptions = z.strictObject({
  ignore: z
    .union([pathList, z.custom((v) => typeof v === 'function')], {
      error: 'must be a list of paths or patterns, or a function',
    })
    .optional(),
  requestIdHeader: z.union([headerName, z.literal(false)]).optional(),
  recordPath: z.boolean().optional(),
  tracer: z
    .custom((v) => hasMethods('startSpan')(v), { error: 'must be a Tracer (an object with startSpan())' })
    .optional(),
});

/** Validates `setupTelemetry` options; throws `config_invalid` naming every offending option. */
export function parseTelemetryOptions(options: unknown): TelemetryOptions {
  return parse(telemetryOptions, options ?? {}, 'setupTelemetry') as TelemetryOptions;
}

/** Validates the options of the Express and Koa `traceRequests()` middleware. */
export function parseTraceRequestsOptions(options: unknown): TraceRequestsOptions {
  return parse(traceRequestsOptions, options ?? {}, 'traceRequests') as TraceRequestsOptions;
}

function parse(schema: z.ZodType, value: unknown, where: string): unknown {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => [...issue.path, k].join('.'));
      return `unknown option ${keys.map((k) => `"${k}"`).join(', ')}`;
    }
    const path = issue.path.length > 0 ? issue.path.join('.') : 'options';
    return `option "${path}" ${issue.message.replace(/^Invalid input: /, '')}`;
  });
  throw new TelemetryError('config_invalid', `${where}: ${problems.join('; ')}`);
}
