import type { Attributes, Span, SpanKind, Tracer } from '@opentelemetry/api';
import type { Sampler, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** Where spans go: OTLP/HTTP (JSON), the console, or nowhere. */
export type ExporterName = 'otlp' | 'console' | 'none';

/** The samplers of the OpenTelemetry specification (`OTEL_TRACES_SAMPLER` values) that need no extra package. */
export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

/** The context propagators that need no extra package (`OTEL_PROPAGATORS` values). */
export type PropagatorName = 'tracecontext' | 'baggage';

/** Auto-instrumentations that `@amas/otel` loads, lazily, when named and installed. */
export type InstrumentationName = 'http' | 'express' | 'koa' | 'ioredis';

/** The signals whose default action ends the process and that `@amas/otel` can flush on. */
export type ShutdownSignal = 'SIGTERM' | 'SIGINT';

/** Where `@amas/otel` writes its start line and its warnings. */
export interface TelemetryLogger {
  /** The one line with the effective configuration, printed once at start. */
  info(message: string): void;
  /** A setting that was ignored, an instrumentation that cannot work, a flush that failed. */
  warn(message: string): void;
}

/** Settings of the batch span processor (`OTEL_BSP_*`). */
export interface BatchOptions {
  /**
   * Spans kept in memory while waiting for export; beyond it, new spans are dropped (and counted in a
   * warning at shutdown). Default 8192, four times the specification's 2048, so that a busy service
   * survives a collector pause without losing spans.
   */
  maxQueueSize?: number;
  /** Spans per export request; at most `maxQueueSize`. Default 512. */
  maxExportBatchSize?: number;
  /** Delay between two scheduled exports, in milliseconds. Default 5000. */
  scheduledDelayMs?: number;
  /** How long one export may take before it is abandoned, in milliseconds. Default 30000. */
  exportTimeoutMs?: number;
}

/** Flush on `SIGTERM`/`SIGINT`; see {@link TelemetryOptions.signals}. */
export interface SignalOptions {
  /** The signals to flush on. Default `['SIGTERM', 'SIGINT']`. */
  signals?: ShutdownSignal[];
  /** The flush deadline, in milliseconds. Default 5000. */
  timeoutMs?: number;
}

/**
 * Options of {@link setupTelemetry}. Every setting with a standard `OTEL_*` environment variable can also
 * be set there; **the environment variable wins over the option** (the precedence the OpenTelemetry
 * documentation gives), and an empty variable counts as unset.
 */
export interface TelemetryOptions {
  /** Start tracing at all. `OTEL_SDK_DISABLED=true` turns it off whatever this says. Default `true`. */
  enabled?: boolean;
  /** `service.name`. Env: `OTEL_SERVICE_NAME`, then `service.name` in `OTEL_RESOURCE_ATTRIBUTES`. */
  serviceName?: string;
  /** `service.version`. Env: `service.version` in `OTEL_RESOURCE_ATTRIBUTES`. */
  serviceVersion?: string;
  /** `deployment.environment.name`. Env: `deployment.environment.name` in `OTEL_RESOURCE_ATTRIBUTES`. */
  environment?: string;
  /** More resource attributes. Env: `OTEL_RESOURCE_ATTRIBUTES` (merged, the environment wins per key). */
  resourceAttributes?: Record<string, string | number | boolean>;
  /** `'otlp'` (default), `'console'`, `'none'`, or your own `SpanExporter`. Env: `OTEL_TRACES_EXPORTER`. */
  exporter?: ExporterName | SpanExporter;
  /**
   * OTLP base URL; `v1/traces` is appended. Env: `OTEL_EXPORTER_OTLP_ENDPOINT`.
   * Default `http://localhost:4318`.
   */
  endpoint?: string;
  /** OTLP traces URL, used as is. Env: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`. */
  tracesEndpoint?: string;
  /**
   * Headers sent with every export (for example an API key). Env: `OTEL_EXPORTER_OTLP_HEADERS` and
   * `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, merged per header. Values are never printed.
   */
  headers?: Record<string, string>;
  /** Timeout of one export request, in milliseconds. Env: `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT`. Default 10000. */
  timeoutMs?: number;
  /** Compression of export requests. Env: `OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION`. Default `'none'`. */
  compression?: 'none' | 'gzip';
  /**
   * A sampler name or your own `Sampler`. Env: `OTEL_TRACES_SAMPLER`.
   * Default `'parentbased_traceidratio'` (with {@link samplerRatio}).
   */
  sampler?: SamplerName | Sampler;
  /** Ratio of the `*traceidratio` samplers, from 0 to 1. Env: `OTEL_TRACES_SAMPLER_ARG`. Default 1. */
  samplerRatio?: number;
  /** Context propagators. Env: `OTEL_PROPAGATORS`. Default `['tracecontext', 'baggage']`. */
  propagators?: PropagatorName[];
  /** Batch span processor settings. Env: `OTEL_BSP_*`. */
  batch?: BatchOptions;
  /**
   * Auto-instrumentations to load; each needs its `@opentelemetry/instrumentation-*` package installed.
   * Env: `OTEL_NODE_ENABLED_INSTRUMENTATIONS` (replaces the list) and `OTEL_NODE_DISABLED_INSTRUMENTATIONS`.
   * Default none.
   */
  instrumentations?: InstrumentationName[];
  /** Paths the `http` auto-instrumentation makes no span for. Default: the usual health-check paths. */
  ignorePaths?: (string | RegExp)[];
  /**
   * Register the ESM loader hook of `@opentelemetry/instrumentation` when instrumentations are named, so
   * that modules imported afterwards with `import` are instrumented. Default `true`.
   */
  esmLoaderHook?: boolean;
  /**
   * Flush on `SIGTERM`/`SIGINT` within a deadline, then let the process end as it would have: when no
   * other listener handles the signal, the signal is raised again; otherwise the other listeners decide.
   * Default `false` (`true` with `@amas/otel/register`).
   */
  signals?: boolean | SignalOptions;
  /** Flush when the event loop empties (`beforeExit`). Default `true`. */
  flushOnExit?: boolean;
  /** Where the start line and warnings go; `false` for silence. Default: standard error. */
  logger?: TelemetryLogger | false;
  /** The environment to read `OTEL_*` variables from. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** Batch settings after defaults and environment. */
export interface ResolvedBatch {
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
  readonly exportTimeoutMs: number;
}

/**
 * The effective configuration: options, environment and defaults resolved once, frozen.
 * It holds no secret: header values are left out, only their names are kept.
 */
export interface TelemetryConfig {
  readonly enabled: boolean;
  readonly serviceName: string;
  readonly serviceVersion: string | undefined;
  readonly environment: string | undefined;
  /** Every resource attribute set by options and environment, `service.*` included. */
  readonly resourceAttributes: Readonly<Record<string, string | number | boolean>>;
  /** Exporters in use; empty when spans go nowhere. */
  readonly exporters: readonly ('otlp' | 'console' | 'custom')[];
  readonly otlp: {
    readonly endpoint: string;
    readonly headerNames: readonly string[];
    readonly timeoutMs: number;
    readonly compression: 'none' | 'gzip';
  };
  readonly sampler: { readonly name: SamplerName | 'custom'; readonly ratio: number };
  readonly propagators: readonly PropagatorName[];
  readonly batch: ResolvedBatch;
  readonly instrumentations: readonly InstrumentationName[];
  readonly ignorePaths: readonly (string | RegExp)[];
  readonly esmLoaderHook: boolean;
  /** Signals flushed on; empty when signal handling is off. */
  readonly signals: readonly ShutdownSignal[];
  readonly signalTimeoutMs: number;
  readonly flushOnExit: boolean;
  /** For each setting not left at its default: the environment variable or `'options'` it came from. */
  readonly sources: Readonly<Record<string, string>>;
}

/** Options of {@link TelemetryHandle.forceFlush} and {@link TelemetryHandle.shutdown}. */
export interface FlushOptions {
  /** Give up after this many milliseconds (rejects with `flush_timeout`). Default: the batch export timeout. */
  timeoutMs?: number;
}

/** What {@link setupTelemetry} returns. */
export interface TelemetryHandle {
  /** `false` when tracing is off (disabled by option or `OTEL_SDK_DISABLED=true`); the methods then do nothing. */
  readonly enabled: boolean;
  /** The effective configuration. */
  readonly config: TelemetryConfig;
  /** Exports every ended span now. Rejects with `export_failed` or `flush_timeout`. */
  forceFlush(options?: FlushOptions): Promise<void>;
  /**
   * Exports every ended span, stops tracing, removes the signal handlers and frees the global registration
   * (a later {@link setupTelemetry} starts afresh). Idempotent. Rejects like {@link forceFlush}.
   */
  shutdown(options?: FlushOptions): Promise<void>;
}

/** Attributes of a span, or a function that computes them from the wrapped function's arguments. */
export type SpanAttributesOption<Args extends unknown[]> = Attributes | ((...args: Args) => Attributes);

/** Options of {@link withSpan} and {@link traced}. */
export interface WithSpanOptions<Args extends unknown[] = unknown[]> {
  /**
   * Span attributes. A function runs only when the span is recorded (sampled), so it costs nothing
   * otherwise; if it throws, the span simply goes without them. Never put tokens, secrets or personal data here.
   */
  attributes?: SpanAttributesOption<Args>;
  /** Span kind. Default `INTERNAL`. */
  kind?: SpanKind;
  /** Start a new trace instead of a child of the active span. */
  root?: boolean;
  /** The tracer to use. Default: the global tracer named `@amas/otel`. */
  tracer?: Tracer;
}

/** Options of the {@link traced} decorator. */
export interface TracedOptions<Args extends unknown[] = unknown[]> extends WithSpanOptions<Args> {
  /** Span name. Default `ClassName.methodName`. */
  name?: string;
}

/** Which paths a server-span middleware leaves alone: exact paths, patterns, or a predicate. */
export type IgnoreOption = (string | RegExp)[] | ((path: string, method: string) => boolean);

/** Options of the Express and Koa `traceRequests()` middleware. */
export interface TraceRequestsOptions {
  /**
   * Requests that get no span (and whose downstream spans are suppressed).
   * Default `['/health', '/healthz', '/livez', '/readyz', '/metrics']`.
   */
  ignore?: IgnoreOption;
  /**
   * Header carrying the caller's request id, recorded as `amas.otel.request_id` when it is a plain token
   * (letters, digits, `-`, `_`, `.`, `:`, up to 128 characters). `false` to ignore it. Default `'x-request-id'`.
   */
  requestIdHeader?: string | false;
  /** Record `url.path` (it may hold identifiers). Default `true`. The query string is never recorded. */
  recordPath?: boolean;
  /** The tracer to use. Default: the global tracer named `@amas/otel`. */
  tracer?: Tracer;
}

/** What the middleware puts on `req.amas.otel` (Express) and `ctx.state.amas.otel` (Koa). */
export interface RequestTelemetry {
  /** The server span of this request (ours, or the auto-instrumentation's that we enriched). */
  readonly span: Span;
  /** W3C trace id, for logs. */
  readonly traceId: string;
  /** Whether the trace is sampled (exported). */
  readonly sampled: boolean;
  /** The caller's request id when valid, otherwise the trace id. */
  readonly requestId: string;
}
