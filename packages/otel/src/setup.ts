import { context, propagation, type TextMapPropagator, TraceFlags, trace } from '@opentelemetry/api';
import {
  CompositePropagator,
  ExportResultCode,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  ParentBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-node';
import { describeConfig, type ResolvedRuntime, resolveConfig } from './config.js';
import { isTelemetryError, TelemetryError } from './errors.js';
import { enableInstrumentations } from './instrumentations.js';
import { parseTelemetryOptions } from './options.js';
import { AmasOtlpTraceExporter } from './otlp-exporter.js';
import { installExitHooks } from './signals.js';
import { PARENT_BASED_PROVIDER } from './tracer.js';
import type {
  FlushOptions,
  TelemetryConfig,
  TelemetryHandle,
  TelemetryLogger,
  TelemetryOptions,
} from './types.js';
import { VERSION } from './version.js';

// One slot per process, shared by the ESM and CommonJS copies of this package.
const ACTIVE = Symbol.for('@amas/otel/active-handle');
type Slot = { handle: TelemetryHandle; describe: string };
const slot = globalThis as { [ACTIVE]?: Slot };

const stderrLogger: TelemetryLogger = {
  info: (message) => process.stderr.write(`@amas/otel: ${message}\n`),
  warn: (message) => process.stderr.write(`@amas/otel: warning: ${message}\n`),
};
const silentLogger: TelemetryLogger = { info: () => {}, warn: () => {} };

/**
 * Starts OpenTelemetry tracing in one call: a `NodeTracerProvider` with a batch span processor exporting
 * OTLP/HTTP (JSON), the W3C propagators, the sampler, the resource, and the named auto-instrumentations.
 * Options are validated once (a bad one throws a `TelemetryError` with code `config_invalid`); every setting
 * also honours its standard `OTEL_*` variable, which wins over the option. The effective configuration is
 * printed once, in one line, without secrets.
 *
 * Calling it again while tracing runs registers nothing twice: it returns the running handle (and warns if
 * the options differ). If another OpenTelemetry SDK already registered a global tracer provider, it throws
 * `already_started` instead of silently exporting nothing.
 *
 * @example
 * ```ts
 * import { setupTelemetry } from '@amas/otel';
 *
 * const telemetry = setupTelemetry({
 *   serviceName: 'orchestrator',
 *   serviceVersion: '1.4.2',
 *   environment: 'production',
 *   endpoint: 'http://otel-collector:4318',
 *   samplerRatio: 0.1,
 *   instrumentations: ['http', 'express'],
 *   signals: true,
 * });
 * // ... on the way out, if you manage shutdown yourself:
 * await telemetry.shutdown();
 * ```
 */
export function setupTelemetry(options: TelemetryOptions = {}): TelemetryHandle {
  const parsed = parseTelemetryOptions(options);
  const logger = parsed.logger === false ? silentLogger : (parsed.logger ?? stderrLogger);
  const { config, runtime } = resolveConfig(parsed, parsed.env ?? process.env, (m) => logger.warn(m));
  const describe = describeConfig(config);

  const running = slot[ACTIVE];
  if (running !== undefined) {
    if (running.describe !== describe) {
      logger.warn(
        `setupTelemetry was called again while tracing runs; the running configuration is kept (${running.describe})`,
      );
    }
    return running.handle;
  }

  logger.info(describe);
  if (!config.enabled) return disabledHandle(config);

  const handle = startTracing(config, runtime, logger);
  slot[ACTIVE] = { handle, describe };
  return handle;
}

function startTracing(
  config: TelemetryConfig,
  runtime: ResolvedRuntime,
  logger: TelemetryLogger,
): TelemetryHandle {
  const tally = new Tally();
  const processors: SpanProcessor[] = exportersFor(config, runtime).map(
    (exporter) =>
      new BatchSpanProcessor(tally.watch(exporter), {
        maxQueueSize: config.batch.maxQueueSize,
        maxExportBatchSize: config.batch.maxExportBatchSize,
        scheduledDelayMillis: config.batch.scheduledDelayMs,
        exportTimeoutMillis: config.batch.exportTimeoutMs,
      }),
  );
  const provider = new NodeTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...config.resourceAttributes,
        'telemetry.distro.name': '@amas/otel',
        'telemetry.distro.version': VERSION,
      }),
    ),
    sampler: runtime.sampler ?? samplerFor(config),
    spanProcessors: processors.length > 0 ? [tally, ...processors] : [],
  });

  const proxy = trace.getTracerProvider() as { getDelegate?: () => unknown };
  const before = proxy.getDelegate?.();
  provider.register({ propagator: propagatorFor(config) });
  if (proxy.getDelegate?.() !== provider) {
    void provider.shutdown();
    throw new TelemetryError(
      'already_started',
      `another OpenTelemetry SDK already registered a global tracer provider (${
        (before as object | undefined)?.constructor?.name ?? 'unknown'
      }); spans would go to it, not here. Start only one SDK, or shut the other down first`,
    );
  }

  const g = globalThis as Record<symbol, unknown>;
  if (runtime.sampler === undefined && config.sampler.name.startsWith('parentbased_')) {
    g[PARENT_BASED_PROVIDER] = provider;
  }

  let disableInstrumentations: () => void;
  try {
    disableInstrumentations = enableInstrumentations(config.instrumentations, {
      provider,
      ignorePaths: config.ignorePaths,
      esmLoaderHook: config.esmLoaderHook,
      fromEnv: config.sources.instrumentations?.startsWith('OTEL_') ?? false,
      warn: (m) => logger.warn(m),
    });
  } catch (err) {
    unregister(provider);
    if (g[PARENT_BASED_PROVIDER] === provider) delete g[PARENT_BASED_PROVIDER];
    void provider.shutdown();
    throw err;
  }

  const flush = (timeoutMs: number) =>
    withDeadline(provider.forceFlush(), timeoutMs, 'flush', config.batch.exportTimeoutMs);
  // What has been said about lost spans so far: each report gives only what is new.
  const reported = { dropped: 0, failed: 0 };
  const reportFailed = (failed: number): void => {
    if (failed <= reported.failed) return;
    logger.warn(
      `${failed - reported.failed} spans could not be exported (the collector refused them or was unreachable)`,
    );
    reported.failed = failed;
  };
  const hooks = installExitHooks(
    config.signals,
    config.signalTimeoutMs,
    config.flushOnExit,
    flush,
    (m) => logger.warn(m),
    () => {
      // The process is ending: whatever was sampled and neither exported nor refused is lost now, whether
      // the queue was full or the export had not finished.
      const lost = tally.lost();
      if (lost.dropped > reported.dropped) {
        logger.warn(
          `${lost.dropped - reported.dropped} spans were not exported before the process ended (the queue was full, batch.maxQueueSize=${config.batch.maxQueueSize}, or the export did not finish); call and await shutdown() before exiting, or raise batch.maxQueueSize`,
        );
        reported.dropped = lost.dropped;
      }
      reportFailed(lost.failed);
    },
  );

  let stopped: Promise<void> | undefined;
  const handle: TelemetryHandle = Object.freeze({
    enabled: true,
    config,
    forceFlush: (opts: FlushOptions = {}) => flush(opts.timeoutMs ?? config.batch.exportTimeoutMs),
    shutdown(opts: FlushOptions = {}) {
      stopped ??= (async () => {
        hooks.remove();
        disableInstrumentations();
        if (slot[ACTIVE]?.handle === handle) delete slot[ACTIVE];
        let flushed = false;
        try {
          await withDeadline(
            provider.shutdown(),
            opts.timeoutMs ?? config.batch.exportTimeoutMs,
            'shutdown',
            config.batch.exportTimeoutMs,
          );
          flushed = true;
        } finally {
          unregister(provider);
          if (g[PARENT_BASED_PROVIDER] === provider) delete g[PARENT_BASED_PROVIDER];
          const lost = tally.lost();
          // Only a completed flush tells dropped spans apart from spans still on their way.
          if (flushed && lost.dropped > reported.dropped) {
            logger.warn(
              `${lost.dropped - reported.dropped} spans were dropped because the queue was full (batch.maxQueueSize=${config.batch.maxQueueSize}); raise batch.maxQueueSize or OTEL_BSP_MAX_QUEUE_SIZE`,
            );
            reported.dropped = lost.dropped;
          }
          reportFailed(lost.failed);
        }
      })();
      return stopped;
    },
  });
  return handle;
}

/**
 * Counts what was sampled and ended against what each exporter delivered, so that a span lost at shutdown
 * (a full queue drops silently in the SDK) is reported instead of vanishing.
 */
class Tally implements SpanProcessor {
  private ended = 0;
  private readonly delivered: { exported: number; failed: number }[] = [];

  watch(exporter: SpanExporter): SpanExporter {
    const counts = { exported: 0, failed: 0 };
    this.delivered.push(counts);
    return {
      export(spans, done) {
        exporter.export(spans, (result) => {
          if (result.code === ExportResultCode.SUCCESS) counts.exported += spans.length;
          else counts.failed += spans.length;
          done(result);
        });
      },
      shutdown: () => exporter.shutdown(),
      forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
    };
  }

  lost(): { dropped: number; failed: number } {
    let dropped = 0;
    let failed = 0;
    for (const c of this.delivered) {
      dropped = Math.max(dropped, this.ended - c.exported - c.failed);
      failed = Math.max(failed, c.failed);
    }
    return { dropped, failed };
  }

  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0) this.ended++;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function exportersFor(config: TelemetryConfig, runtime: ResolvedRuntime): SpanExporter[] {
  return config.exporters.map((name) => {
    if (name === 'custom') return runtime.exporter as SpanExporter;
    if (name === 'console') return new ConsoleSpanExporter();
    return withoutEnvHeaders(
      () =>
        new AmasOtlpTraceExporter({
          url: config.otlp.endpoint,
          headers: { ...runtime.headers },
          timeoutMillis: config.otlp.timeoutMs,
          compression: config.otlp.compression as never,
        }),
    );
  });
}

const HEADER_VARIABLES = ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'] as const;

/**
 * The OTLP exporter reads `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` from `process.env` itself, when it is
 * constructed, and adds them under the headers it is given: a header dropped here (a value Node.js refuses,
 * which then fails every export) would come back, and `process.env` would leak past the `env` option. The
 * headers resolved here must be the only ones, so the exporter is built with those two variables hidden.
 */
function withoutEnvHeaders<T>(make: () => T): T {
  const saved = HEADER_VARIABLES.map((name) => [name, process.env[name]] as const);
  for (const name of HEADER_VARIABLES) delete process.env[name];
  try {
    return make();
  } finally {
    for (const [name, value] of saved) if (value !== undefined) process.env[name] = value;
  }
}

function samplerFor(config: TelemetryConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.sampler.ratio);
  switch (config.sampler.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    default:
      return new ParentBasedSampler({ root: ratio });
  }
}

function propagatorFor(config: TelemetryConfig): TextMapPropagator | null {
  const propagators: TextMapPropagator[] = config.propagators.map((p) =>
    p === 'tracecontext' ? new W3CTraceContextPropagator() : new W3CBaggagePropagator(),
  );
  if (propagators.length === 0) return null;
  return propagators.length === 1
    ? (propagators[0] as TextMapPropagator)
    : new CompositePropagator({ propagators });
}

/** Frees the global API registration, but only if it is still ours. */
function unregister(provider: NodeTracerProvider): void {
  const proxy = trace.getTracerProvider() as { getDelegate?: () => unknown };
  if (proxy.getDelegate?.() !== provider) return;
  trace.disable();
  context.disable();
  propagation.disable();
}

async function withDeadline(
  work: Promise<void>,
  timeoutMs: number,
  what: string,
  exportTimeoutMs: number,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TelemetryError('flush_timeout', `${what} did not finish within ${timeoutMs} ms`)),
      // Beyond 2^31-1 ms (Infinity included), a Node.js timer fires after 1 ms.
      Math.min(timeoutMs, 2 ** 31 - 1),
    );
    timer.unref();
  });
  try {
    await Promise.race([work, deadline]);
  } catch (thrown) {
    if (isTelemetryError(thrown)) throw thrown;
    // The SDK rejects a flush with the list of processor errors.
    const err: unknown = Array.isArray(thrown) && thrown.length === 1 ? thrown[0] : thrown;
    throw new TelemetryError(
      'export_failed',
      `${what} failed: spans could not be exported (${(err as Error)?.message ?? String(err)}); export timeout ${exportTimeoutMs} ms`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

function disabledHandle(config: TelemetryConfig): TelemetryHandle {
  return Object.freeze({
    enabled: false,
    config,
    forceFlush: async () => {},
    shutdown: async () => {},
  });
}
