import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { TelemetryError } from './errors.js';
import { amasTracer, samplerFollowsParent } from './tracer.js';
import type { TracedOptions, WithSpanOptions } from './types.js';

/**
 * Wraps a function so that every call runs in a span named `name`, a child of the active span. Works for
 * sync functions, functions returning a promise, and functions returning an async iterator (async
 * generators): the span ends when the value is returned, the promise settles, or the iteration finishes
 * or is abandoned with `break`/`return()`. A throw or rejection is recorded on the span (exception event,
 * `error.type`, status `ERROR`) and rethrown unchanged. Spans started inside `fn` nest under this one.
 *
 * When the span is not sampled, the attribute mapper never runs and, if the active span is already
 * unsampled, no context is even entered: the call costs about one sampler decision.
 *
 * @example
 * ```ts
 * import { withSpan } from '@amas/otel';
 *
 * const loadTool = withSpan('tools.load', async (role: string, tool: string) => registry.get(role, tool), {
 *   attributes: (role, tool) => ({ 'tools.role': role, 'tools.name': tool }),
 * });
 * await loadTool('analyst', 'search');
 *
 * const stream = withSpan('llm.stream', async function* (prompt: string) {
 *   for await (const chunk of client.stream(prompt)) yield chunk;
 * });
 * ```
 */
export function withSpan<This, Args extends unknown[], Return>(
  name: string,
  fn: (this: This, ...args: Args) => Return,
  options: WithSpanOptions<Args> = {},
): (this: This, ...args: Args) => Return {
  if (typeof name !== 'string' || name === '') {
    throw new TelemetryError('config_invalid', 'withSpan: the span name must be a non-empty string');
  }
  if (typeof fn !== 'function') throw new TelemetryError('config_invalid', 'withSpan: fn must be a function');
  const spanOptions: SpanOptions = { kind: options.kind ?? SpanKind.INTERNAL };
  if (options.root) spanOptions.root = true;
  const attributes = options.attributes;
  const tracer = options.tracer;

  return function traced(this: This, ...args: Args): Return {
    const parent = context.active();
    const t = tracer ?? amasTracer();
    const current = spanOptions.root ? undefined : trace.getSpan(parent)?.spanContext();
    const underUnsampled =
      current !== undefined && (current.traceFlags & TraceFlags.SAMPLED) === 0 && isSpanContextValid(current);
    // With our parent-based sampler, a child of an unsampled span is not sampled: no need to start one.
    if (underUnsampled && tracer === undefined && samplerFollowsParent()) return fn.apply(this, args);
    const span = t.startSpan(name, spanOptions, parent);
    if (!span.isRecording()) {
      // The active span already carries "not sampled" to everything below.
      if (underUnsampled) return fn.apply(this, args);
      return context.with(trace.setSpan(parent, span), fn, this, ...args);
    }
    if (attributes !== undefined) setAttributes(span, attributes, args);
    const active = trace.setSpan(parent, span);
    let result: Return;
    try {
      result = context.with(active, fn, this, ...args);
    } catch (err) {
      recordFailure(span, err);
      span.end();
      throw err;
    }
    return settle(span, active, result);
  };
}

/**
 * Method decorator (standard TypeScript 5+ decorators, no `experimentalDecorators`) that runs each call
 * in a span, exactly as {@link withSpan}. The span is named `ClassName.method` unless a name is given.
 *
 * @example
 * ```ts
 * import { traced } from '@amas/otel';
 *
 * class PolicyClient {
 *   @traced()
 *   async decide(input: Input) { ... }            // span "PolicyClient.decide"
 *
 *   @traced({ name: 'policy.bulk', attributes: (inputs: Input[]) => ({ 'policy.count': inputs.length }) })
 *   async decideAll(inputs: Input[]) { ... }
 * }
 * ```
 */
export function traced<This, Args extends unknown[], Return>(nameOrOptions?: string | TracedOptions<Args>) {
  const options: TracedOptions<Args> =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...nameOrOptions };
  return function decorate(
    target: (this: This, ...args: Args) => Return,
    decoratorContext: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => Return>,
  ): (this: This, ...args: Args) => Return {
    if (decoratorContext?.kind !== 'method') {
      throw new TelemetryError('config_invalid', '@traced() decorates class methods only');
    }
    if (options.name !== undefined) return withSpan(options.name, target, options);
    const method = String(decoratorContext.name);
    const byClass = new WeakMap<object, (this: This, ...args: Args) => Return>();
    let detached: ((this: This, ...args: Args) => Return) | undefined;
    return function tracedMethod(this: This, ...args: Args): Return {
      const owner = ownerOf(this, decoratorContext.static);
      if (owner === undefined) {
        // Called without a usable `this` (a detached method, a prototype-less object): still the method's call.
        detached ??= withSpan(`anonymous.${method}`, target, options);
        return detached.apply(this, args);
      }
      let wrapped = byClass.get(owner);
      if (wrapped === undefined) {
        wrapped = withSpan(`${owner.name || 'anonymous'}.${method}`, target, options);
        byClass.set(owner, wrapped);
      }
      return wrapped.apply(this, args);
    };
  };
}

/** The class a method was called on (the instance's constructor, or the class for a static method). */
function ownerOf(self: unknown, isStatic: boolean): { name?: string } | undefined {
  if ((typeof self !== 'object' && typeof self !== 'function') || self === null) return undefined;
  const owner = isStatic ? self : (self as { constructor?: unknown }).constructor;
  return typeof owner === 'function' ? (owner as { name?: string }) : undefined;
}

function setAttributes<Args extends unknown[]>(
  span: Span,
  attributes: Attributes | ((...args: Args) => Attributes),
  args: Args,
): void {
  if (typeof attributes !== 'function') {
    span.setAttributes(attributes);
    return;
  }
  try {
    span.setAttributes(attributes(...args));
  } catch {
    // A failing mapper costs the attributes, never the call.
  }
}

function settle<Return>(span: Span, active: Context, result: Return): Return {
  if (result instanceof Promise) {
    return result.then(
      (value: unknown) => {
        span.end();
        return value;
      },
      (err: unknown) => {
        recordFailure(span, err);
        span.end();
        throw err;
      },
    ) as Return;
  }
  if (isThenable(result)) return settleThenable(span, result) as Return;
  if (isAsyncIterator(result)) return traceIterator(span, active, result) as Return;
  if (isGenerator(result)) return traceGenerator(span, active, result) as Return;
  span.end();
  return result;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Ends the span when a thenable that is not a native promise settles. It comes back as its `then` chains
 * it; one whose `then()` returns nothing, throws, or calls back twice still delivers exactly what `await`
 * would have, and the span ends once.
 */
function settleThenable(span: Span, thenable: PromiseLike<unknown>): PromiseLike<unknown> {
  let outcome: Outcome | undefined;
  let deliver: ((o: Outcome) => void) | undefined;
  const settled = (o: Outcome): boolean => {
    if (outcome !== undefined) return false;
    outcome = o;
    if (!o.ok) recordFailure(span, o.error);
    span.end();
    deliver?.(o);
    return true;
  };
  let chained: unknown;
  try {
    chained = thenable.then(
      (value) => {
        settled({ ok: true, value });
        return value;
      },
      (error: unknown) => {
        // A second callback from a broken thenable is ignored, as a promise would ignore it.
        if (settled({ ok: false, error })) throw error;
        return undefined;
      },
    );
  } catch (error) {
    settled({ ok: false, error });
    chained = undefined;
  }
  if (isThenable(chained)) return chained;
  return new Promise((resolve, reject) => {
    deliver = (o) => (o.ok ? resolve(o.value) : reject(o.error));
    if (outcome !== undefined) deliver(outcome);
  });
}

/** A sync generator: the span covers the iteration, as for an async iterator. */
function traceGenerator(span: Span, active: Context, generator: Generator): Generator {
  let ended = false;
  const finish = (err?: unknown, failed = false): void => {
    if (ended) return;
    ended = true;
    if (failed) recordFailure(span, err);
    span.end();
  };
  const step = (method: 'next' | 'return' | 'throw', arg: unknown): IteratorResult<unknown> => {
    let result: IteratorResult<unknown>;
    try {
      result = context.with(active, () =>
        (generator[method] as (a: unknown) => IteratorResult<unknown>)(arg),
      );
    } catch (err) {
      finish(err, true);
      throw err;
    }
    if (result.done || method === 'return') finish();
    return result;
  };
  const traced = {
    next: (value?: unknown) => step('next', value),
    return: (value?: unknown) => step('return', value),
    throw: (err?: unknown) => step('throw', err),
    [Symbol.iterator]() {
      return this;
    },
  };
  return Object.setPrototypeOf(traced, Object.getPrototypeOf(generator)) as Generator;
}

function traceIterator(
  span: Span,
  active: Context,
  iterator: AsyncIterator<unknown>,
): AsyncIterableIterator<unknown> {
  let ended = false;
  const finish = (err?: unknown, failed = false): void => {
    if (ended) return;
    ended = true;
    if (failed) recordFailure(span, err);
    span.end();
  };
  const step = (method: 'next' | 'return' | 'throw', arg: unknown): Promise<IteratorResult<unknown>> => {
    let pending: Promise<IteratorResult<unknown>>;
    try {
      pending = Promise.resolve(context.with(active, () => (iterator[method] as (a: unknown) => never)(arg)));
    } catch (err) {
      finish(err, true);
      return Promise.reject(err);
    }
    return pending.then(
      (result) => {
        if (result.done || method === 'return') finish();
        return result;
      },
      (err: unknown) => {
        finish(err, true);
        throw err;
      },
    );
  };
  return {
    next: (value?: unknown) => step('next', value),
    return: (value?: unknown) => {
      if (typeof iterator.return === 'function') return step('return', value);
      finish();
      return Promise.resolve({ done: true, value });
    },
    throw: (err?: unknown) => {
      if (typeof iterator.throw === 'function') return step('throw', err);
      finish(err, true);
      return Promise.reject(err);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Records a failure the OpenTelemetry way: exception event, `error.type`, status `ERROR`. Never throws: an
 * error whose properties cannot be read still marks the span, and the caller rethrows the original.
 */
export function recordFailure(span: Span, err: unknown): void {
  try {
    if (err instanceof Error) {
      span.recordException(err);
      const code = (err as { code?: unknown }).code;
      span.setAttribute('error.type', typeof code === 'string' && code !== '' ? code : err.name);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
    } else {
      span.setAttribute('error.type', typeof err);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  } catch {
    span.setAttribute('error.type', 'Error');
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function isGenerator(value: unknown): value is Generator {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.prototype.toString.call(value) === '[object Generator]'
  );
}

function isAsyncIterator(value: unknown): value is AsyncIterator<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { next?: unknown }).next === 'function' &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}
