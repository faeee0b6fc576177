import type { Sampler, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createEnvReader } from './env.js';
import {
  DEFAULT_IGNORE_PATHS,
  INSTRUMENTATIONS,
  INVALID_HEADER_VALUE,
  PROPAGATORS,
  SAMPLERS,
  SIGNALS,
} from './options.js';
import type {
  InstrumentationName,
  PropagatorName,
  SamplerName,
  ShutdownSignal,
  TelemetryConfig,
  TelemetryOptions,
} from './types.js';

const ATTR_SERVICE_NAME = 'service.name';
const ATTR_SERVICE_VERSION = 'service.version';
// Incubating in semantic-conventions 1.45, so copied here rather than imported from `/incubating`.
const ATTR_DEPLOYMENT_ENVIRONMENT_NAME = 'deployment.environment.name';
const DEFAULT_ENDPOINT = 'http://localhost:4318/';
// Four times the specification's 2048: a service at tens of thousands of spans per second outruns a
// 2048-span queue whenever the collector pauses for a few tens of milliseconds, and the SDK then drops
// spans without a word. 8192 spans cost some megabytes at most.
export const DEFAULT_MAX_QUEUE_SIZE = 8192;

/** What the SDK needs beyond the printable configuration: secrets and user-supplied objects. */
export interface ResolvedRuntime {
  readonly headers: Readonly<Record<string, string>>;
  readonly exporter: SpanExporter | undefined;
  readonly sampler: Sampler | undefined;
}

/**
 * Resolves options, `OTEL_*` variables and defaults into one frozen configuration. The environment wins
 * over options (the precedence of the OpenTelemetry SDK configuration documentation); among variables,
 * the signal-specific one (`..._TRACES_...`) wins over the general one.
 */
export function resolveConfig(
  options: TelemetryOptions,
  env: Record<string, string | undefined>,
  warn: (message: string) => void,
): { config: TelemetryConfig; runtime: ResolvedRuntime } {
  const read = createEnvReader(env, warn);
  const sources: Record<string, string> = {};
  const pick = <T>(setting: string, candidates: [string, T | undefined][], fallback: T): T => {
    for (const [source, value] of candidates) {
      if (value !== undefined) {
        sources[setting] = source;
        return value;
      }
    }
    return fallback;
  };

  const disabled = read.boolean('OTEL_SDK_DISABLED') === true;
  if (disabled) sources.enabled = 'OTEL_SDK_DISABLED';
  const enabled = !disabled && pick('enabled', [['options', options.enabled]], true);

  const envResource = read.keyValues('OTEL_RESOURCE_ATTRIBUTES') ?? {};
  const optResource = options.resourceAttributes ?? {};
  const serviceName = pick<string>(
    ATTR_SERVICE_NAME,
    [
      ['OTEL_SERVICE_NAME', read.string('OTEL_SERVICE_NAME')],
      ['OTEL_RESOURCE_ATTRIBUTES', envResource[ATTR_SERVICE_NAME]],
      ['options', options.serviceName ?? stringOrUndefined(optResource[ATTR_SERVICE_NAME])],
    ],
    'unknown_service:node',
  );
  const serviceVersion = pick<string | undefined>(
    ATTR_SERVICE_VERSION,
    [
      ['OTEL_RESOURCE_ATTRIBUTES', envResource[ATTR_SERVICE_VERSION]],
      ['options', options.serviceVersion ?? stringOrUndefined(optResource[ATTR_SERVICE_VERSION])],
    ],
    undefined,
  );
  const environment = pick<string | undefined>(
    ATTR_DEPLOYMENT_ENVIRONMENT_NAME,
    [
      ['OTEL_RESOURCE_ATTRIBUTES', envResource[ATTR_DEPLOYMENT_ENVIRONMENT_NAME]],
      ['options', options.environment ?? stringOrUndefined(optResource[ATTR_DEPLOYMENT_ENVIRONMENT_NAME])],
    ],
    undefined,
  );
  const resourceAttributes: Record<string, string | number | boolean> = {
    ...optResource,
    ...envResource,
    [ATTR_SERVICE_NAME]: serviceName,
  };
  if (serviceVersion !== undefined) resourceAttributes[ATTR_SERVICE_VERSION] = serviceVersion;
  if (environment !== undefined) resourceAttributes[ATTR_DEPLOYMENT_ENVIRONMENT_NAME] = environment;

  const envExporters = read.listOf('OTEL_TRACES_EXPORTER', ['otlp', 'console', 'none'] as const, [
    'zipkin',
    'jaeger',
  ]);
  const optExporter = options.exporter;
  const customExporter = typeof optExporter === 'object' ? optExporter : undefined;
  const exporterNames = pick<readonly ('otlp' | 'console' | 'none' | 'custom')[]>(
    'exporter',
    [
      ['OTEL_TRACES_EXPORTER', envExporters?.length ? envExporters : undefined],
      [
        'options',
        optExporter === undefined ? undefined : [customExporter ? 'custom' : (optExporter as 'otlp')],
      ],
    ],
    ['otlp'],
  );
  const exporters = exporterNames.includes('none')
    ? []
    : (exporterNames.filter((e) => e !== 'none') as ('otlp' | 'console' | 'custom')[]);

  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = read.string(name);
    if (protocol !== undefined && protocol !== 'http/json') {
      warn(`${name}=${protocol} is ignored: @amas/otel exports OTLP over HTTP as JSON (http/json)`);
    }
  }
  const endpoint = pick<string>(
    'endpoint',
    [
      ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', read.url('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', withTracesPath(read.url('OTEL_EXPORTER_OTLP_ENDPOINT'))],
      ['options', options.tracesEndpoint ?? withTracesPath(options.endpoint)],
    ],
    withTracesPath(DEFAULT_ENDPOINT) as string,
  );
  const headers = lowerKeys({ ...options.headers });
  if (options.headers !== undefined) sources.headers = 'options';
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const fromEnv = safeHeaders(name, read.keyValues(name), warn);
    if (fromEnv === undefined) continue;
    Object.assign(headers, lowerKeys(fromEnv));
    sources.headers = name;
  }
  const timeoutMs = pick<number>(
    'timeoutMs',
    [
      ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', read.integer('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 1)],
      ['OTEL_EXPORTER_OTLP_TIMEOUT', read.integer('OTEL_EXPORTER_OTLP_TIMEOUT', 1)],
      ['options', options.timeoutMs],
    ],
    10_000,
  );
  const compressions = ['none', 'gzip'] as const;
  const compression = pick<'none' | 'gzip'>(
    'compression',
    [
      [
        'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION',
        read.enumOf('OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', compressions),
      ],
      ['OTEL_EXPORTER_OTLP_COMPRESSION', read.enumOf('OTEL_EXPORTER_OTLP_COMPRESSION', compressions)],
      ['options', options.compression],
    ],
    'none',
  );

  const customSampler = typeof options.sampler === 'object' ? options.sampler : undefined;
  const samplerName = pick<SamplerName | 'custom'>(
    'sampler',
    [
      ['OTEL_TRACES_SAMPLER', read.enumOf('OTEL_TRACES_SAMPLER', SAMPLERS)],
      ['options', customSampler ? 'custom' : (options.sampler as SamplerName | undefined)],
    ],
    'parentbased_traceidratio',
  );
  const ratio = pick<number>(
    'samplerRatio',
    [
      [
        'OTEL_TRACES_SAMPLER_ARG',
        samplerName.endsWith('traceidratio') ? read.ratio('OTEL_TRACES_SAMPLER_ARG') : undefined,
      ],
      ['options', options.samplerRatio],
    ],
    1,
  );

  const envPropagators = read.listOf('OTEL_PROPAGATORS', [...PROPAGATORS, 'none'] as const, [
    'b3',
    'b3multi',
    'jaeger',
    'xray',
    'ottrace',
  ]);
  const propagators = pick<readonly PropagatorName[]>(
    'propagators',
    [
      [
        'OTEL_PROPAGATORS',
        envPropagators === undefined
          ? undefined
          : (envPropagators.filter((p) => p !== 'none') as PropagatorName[]),
      ],
      ['options', options.propagators],
    ],
    PROPAGATORS,
  );

  const batchOpt = options.batch ?? {};
  const batch = {
    maxQueueSize: pick<number>(
      'batch.maxQueueSize',
      [
        ['OTEL_BSP_MAX_QUEUE_SIZE', read.integer('OTEL_BSP_MAX_QUEUE_SIZE', 1)],
        ['options', batchOpt.maxQueueSize],
      ],
      DEFAULT_MAX_QUEUE_SIZE,
    ),
    maxExportBatchSize: pick<number>(
      'batch.maxExportBatchSize',
      [
        ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', read.integer('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1)],
        ['options', batchOpt.maxExportBatchSize],
      ],
      512,
    ),
    scheduledDelayMs: pick<number>(
      'batch.scheduledDelayMs',
      [
        ['OTEL_BSP_SCHEDULE_DELAY', read.integer('OTEL_BSP_SCHEDULE_DELAY', 0)],
        ['options', batchOpt.scheduledDelayMs],
      ],
      5000,
    ),
    exportTimeoutMs: pick<number>(
      'batch.exportTimeoutMs',
      [
        ['OTEL_BSP_EXPORT_TIMEOUT', read.integer('OTEL_BSP_EXPORT_TIMEOUT', 1)],
        ['options', batchOpt.exportTimeoutMs],
      ],
      30_000,
    ),
  };
  if (batch.maxExportBatchSize > batch.maxQueueSize) {
    if (sources['batch.maxExportBatchSize'] !== undefined)
      warn(
        `batch.maxExportBatchSize (${batch.maxExportBatchSize}) exceeds batch.maxQueueSize (${batch.maxQueueSize}); using ${batch.maxQueueSize}`,
      );
    batch.maxExportBatchSize = batch.maxQueueSize;
  }

  const envEnabled = read.listOf('OTEL_NODE_ENABLED_INSTRUMENTATIONS', INSTRUMENTATIONS);
  const envDisabled = read.listOf('OTEL_NODE_DISABLED_INSTRUMENTATIONS', INSTRUMENTATIONS) ?? [];
  const named = pick<readonly InstrumentationName[]>(
    'instrumentations',
    [
      ['OTEL_NODE_ENABLED_INSTRUMENTATIONS', envEnabled],
      ['options', options.instrumentations],
    ],
    [],
  );
  if (envDisabled.length > 0) sources.instrumentations = 'OTEL_NODE_DISABLED_INSTRUMENTATIONS';
  const instrumentations = [...new Set(named)].filter((i) => !envDisabled.includes(i));

  const signalOpt = options.signals;
  const signals: readonly ShutdownSignal[] =
    signalOpt === true ? SIGNALS : signalOpt ? (signalOpt.signals ?? SIGNALS) : [];
  if (signalOpt !== undefined) sources.signals = 'options';
  const signalTimeoutMs = (typeof signalOpt === 'object' ? signalOpt.timeoutMs : undefined) ?? 5000;

  const config: TelemetryConfig = deepFreeze({
    enabled,
    serviceName,
    serviceVersion,
    environment,
    resourceAttributes,
    exporters,
    otlp: { endpoint, headerNames: Object.keys(headers).sort(), timeoutMs, compression },
    sampler: { name: samplerName, ratio },
    propagators: [...propagators],
    batch,
    instrumentations,
    // A global or sticky pattern would carry `lastIndex` from one request to the next.
    ignorePaths: (options.ignorePaths ?? DEFAULT_IGNORE_PATHS).map((p) =>
      typeof p === 'string' ? p : new RegExp(p.source, p.flags.replace(/[gy]/g, '')),
    ),
    esmLoaderHook: options.esmLoaderHook ?? true,
    signals: [...new Set(signals)],
    signalTimeoutMs,
    flushOnExit: options.flushOnExit ?? true,
    sources,
  });
  return {
    config,
    runtime: Object.freeze({
      headers: Object.freeze(headers),
      exporter: exporters.includes('custom') ? customExporter : undefined,
      sampler: samplerName === 'custom' ? customSampler : undefined,
    }),
  };
}

/**
 * The effective configuration as one `key=value` line, for the start-up log. Header values, URL
 * credentials and query strings are never printed.
 */
export function describeConfig(config: TelemetryConfig): string {
  if (!config.enabled) {
    return `tracing off (${config.sources.enabled === 'OTEL_SDK_DISABLED' ? 'OTEL_SDK_DISABLED=true' : 'enabled: false'})`;
  }
  const { batch } = config;
  const fields: [string, string | number | undefined][] = [
    ['service.name', config.serviceName],
    ['service.version', config.serviceVersion],
    ['deployment.environment.name', config.environment],
    ['exporter', config.exporters.length > 0 ? config.exporters.join(',') : 'none'],
  ];
  if (config.exporters.includes('otlp')) {
    fields.push(
      ['endpoint', redactUrl(config.otlp.endpoint)],
      ['headers', config.otlp.headerNames.length > 0 ? config.otlp.headerNames.join(',') : undefined],
      ['compression', config.otlp.compression === 'none' ? undefined : config.otlp.compression],
    );
  }
  fields.push(
    [
      'sampler',
      config.sampler.name.endsWith('traceidratio')
        ? `${config.sampler.name}(${config.sampler.ratio})`
        : config.sampler.name,
    ],
    ['propagators', config.propagators.length > 0 ? config.propagators.join(',') : 'none'],
    [
      'batch',
      `queue=${batch.maxQueueSize}/batch=${batch.maxExportBatchSize}/delay=${batch.scheduledDelayMs}ms/timeout=${batch.exportTimeoutMs}ms`,
    ],
    ['instrumentations', config.instrumentations.length > 0 ? config.instrumentations.join(',') : 'none'],
    [
      'signals',
      config.signals.length > 0 ? `${config.signals.join(',')}(${config.signalTimeoutMs}ms)` : 'off',
    ],
    ['flushOnExit', String(config.flushOnExit)],
  );
  const fromEnv = [...new Set(Object.values(config.sources).filter((s) => s !== 'options'))];
  if (fromEnv.length > 0) fields.push(['from-env', fromEnv.sort().join(',')]);
  return `tracing on ${fields
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${quote(String(v))}`)
    .join(' ')}`;
}

function quote(value: string): string {
  return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
}

export function redactUrl(value: string): string {
  const url = new URL(value);
  if (url.username || url.password) {
    url.username = 'redacted';
    url.password = '';
  }
  if (url.search) url.search = '?redacted';
  return url.href;
}

/** The per-signal URL of the specification: `v1/traces` appended to the base URL's path (a query stays a query). */
function withTracesPath(base: string | undefined): string | undefined {
  if (base === undefined) return undefined;
  const url = new URL(base);
  url.pathname = `${url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`}v1/traces`;
  return url.href;
}

/** Drops header entries a Node.js client would refuse (and that could smuggle a second header). */
function safeHeaders(
  name: string,
  headers: Record<string, string> | undefined,
  warn: (message: string) => void,
): Record<string, string> | undefined {
  if (headers === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key) && !INVALID_HEADER_VALUE.test(value)) out[key] = value;
    else warn(`${name}: header "${key.replace(/[^\x21-\x7e]/g, '?')}" is ignored: invalid name or value`);
  }
  return out;
}

function lowerKeys(record: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record)) out[k.toLowerCase()] = v;
  return out;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof RegExp) && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
