import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/**
 * Registers an OpenTelemetry SDK with an in-memory exporter as the global tracer provider, so that
 * the spans `@amas/oidc` emits through `@opentelemetry/api` can be asserted. Call before creating
 * verifiers.
 */
export function recordSpans(): { exporter: InMemorySpanExporter; spans(name?: string): ReadableSpan[] } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.disable();
  trace.setGlobalTracerProvider(provider);
  return {
    exporter,
    spans: (name) => exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name),
  };
}
