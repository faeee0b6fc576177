import type { OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import { TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { FastJsonTraceSerializer } from './otlp-json.js';

/** The component type the official OTLP/HTTP trace exporter reports itself as. */
const COMPONENT_TYPE = 'otlp_http_span_exporter';

/**
 * `OTLPTraceExporter` of `@opentelemetry/exporter-trace-otlp-http`, assembled from the same parts (the
 * official OTLP/HTTP transport with its retries, timeout, headers, compression and environment handling)
 * with one change: the request body is written by {@link FastJsonTraceSerializer}, which writes the same
 * bytes in less than half the CPU time. See ADR 0045.
 */
export class AmasOtlpTraceExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter {
  constructor(config: OTLPExporterNodeConfigBase = {}) {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/json' }),
        FastJsonTraceSerializer,
        COMPONENT_TYPE,
        TraceExporterMetricsHelper,
        undefined,
      ),
    );
  }
}
