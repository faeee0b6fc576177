import { type Tracer, type TracerProvider, trace } from '@opentelemetry/api';
import { VERSION } from './version.js';

const NAME = '@amas/otel';
/** Set by setupTelemetry to its provider when its sampler follows the parent's decision (parentbased_*). */
export const PARENT_BASED_PROVIDER = Symbol.for('@amas/otel/parent-based-provider');

let cachedDelegate: unknown;
let cachedTracer: Tracer | undefined;
let cachedFollowsParent = false;

/**
 * The tracer named `@amas/otel` of the tracer provider registered now. A tracer from the API's proxy would
 * keep pointing at the first provider it met, so this follows the global registration instead, and caches
 * the tracer per provider so that the hot path pays a few property reads.
 */
export function amasTracer(): Tracer {
  const provider = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => TracerProvider };
  const delegate = provider.getDelegate?.() ?? provider;
  if (delegate !== cachedDelegate || cachedTracer === undefined) {
    cachedDelegate = delegate;
    cachedTracer = delegate.getTracer(NAME, VERSION);
    cachedFollowsParent = (globalThis as Record<symbol, unknown>)[PARENT_BASED_PROVIDER] === delegate;
  }
  return cachedTracer;
}

/**
 * Whether the provider behind the last {@link amasTracer} call is ours with a parent-based sampler: then a
 * child of an unsampled span is never sampled, and no span needs to be started to know it.
 */
export function samplerFollowsParent(): boolean {
  return cachedFollowsParent;
}
