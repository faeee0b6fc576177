export type { TelemetryErrorCode, TelemetryErrorOptions } from './errors.js';
export { isTelemetryError, TelemetryError, TelemetryErrorStatus } from './errors.js';
export { setupTelemetry } from './setup.js';
export type {
  BatchOptions,
  ExporterName,
  FlushOptions,
  IgnoreOption,
  InstrumentationName,
  PropagatorName,
  RequestTelemetry,
  ResolvedBatch,
  SamplerName,
  ShutdownSignal,
  SignalOptions,
  SpanAttributesOption,
  TelemetryConfig,
  TelemetryHandle,
  TelemetryLogger,
  TelemetryOptions,
  TracedOptions,
  TraceRequestsOptions,
  WithSpanOptions,
} from './types.js';
export { VERSION } from './version.js';
export { traced, withSpan } from './with-span.js';
