import { type Tracer, type TracerProvider, trace } from '@opentelemetry/api';
import { VERSION } from './version.js';

const NAME = '@amas/otel';
let cachedDelegate: unknown;
let cachedTracer: Tracer | undefined;

/**
 * The tracer named `@amas/otel` of the tracer provider registered now. A tracer from the API's proxy would
 * keep pointing at the first provider it met, so this follows the global registration instead, and caches
 * the tracer per provider so that the hot path pays one property read.
 */
export function amasTracer(): Tracer {
  const provider = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => TracerProvider };
  const delegate = provider.getDelegate?.() ?? provider;
  if (delegate !== cachedDelegate || cachedTracer === undefined) {
    cachedDelegate = delegate;
    cachedTracer = delegate.getTracer(NAME, VERSION);
  }
  return cachedTracer;
}
