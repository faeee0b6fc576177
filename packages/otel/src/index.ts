export type { TelemetryErrorCode, TelemetryErrorOptions } from './errors.js';
export { isTelemetryError, TelemetryError, TelemetryErrorStatus } from './errors.js';
export { setupTelemetry } from './setup.js';
export { type GrafanaDashboard, type GrafanaPanel, generateDashboards } from './slo/dashboard.js';
export { renderSloFiles, SLO_FILES } from './slo/files.js';
export { generateSloTests, type PromtoolTestFile } from './slo/fixtures.js';
export {
  generateAlertRules,
  generateRecordingRules,
  type PrometheusRule,
  type PrometheusRuleFile,
  SLO_ALERTS,
} from './slo/rules.js';
export {
  type BurnRateAlert,
  parseSloDefinitions,
  type SloDefinition,
  type SloDefinitions,
  type SloDefinitionsInput,
  type SloService,
  validateSloDefinitions,
} from './slo/schema.js';
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
