import {
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  type Span,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

/** The package's tracer, and whether a span it starts now could record anything at all. */
export interface OidcTracer {
  readonly tracer: Tracer;
  /**
   * False only while no SDK was ever registered behind the API's proxy provider: then `startSpan`
   * would hand back a non-recording span that does nothing, so the hot path skips it. Once an SDK is
   * registered this stays true (a proxy provider never drops its delegate), and every verification
   * starts its span, sampled or not by the SDK.
   */
  readonly maybeRecording: () => boolean;
}

/**
 * `trace.getTracer(name)`, split in two so that the hot path can ask the provider behind the tracer
 * whether it is still the no-op one (the approach of `@amas/contracts`). Only public API:
 * `ProxyTracerProvider#getDelegate()` answers the no-op provider until an SDK registers. A provider
 * that is not this API copy's proxy (an SDK registered directly, another copy of the API) always
 * gets real spans.
 */
export function oidcTracer(name: string): OidcTracer {
  const provider: TracerProvider = trace.getTracerProvider();
  const tracer = provider.getTracer(name);
  if (!(provider instanceof ProxyTracerProvider) || typeof provider.getDelegate !== 'function') {
    return { tracer, maybeRecording: () => true };
  }
  const noop = new ProxyTracerProvider().getDelegate();
  return { tracer, maybeRecording: () => provider.getDelegate() !== noop };
}

/**
 * One shared span that records nothing, used instead of starting a span while no SDK is registered.
 * It holds no state (its context is the invalid one), so sharing it between calls is safe.
 */
export const QUIET_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
