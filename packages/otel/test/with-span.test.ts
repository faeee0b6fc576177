import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AlwaysOnSampler } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it, vi } from 'vitest';
import { isTelemetryError } from '../src/errors.js';
import { amasTracer } from '../src/tracer.js';
import { withSpan } from '../src/with-span.js';
import { byName, startTracing } from './helpers.js';

describe('withSpan on sync functions', () => {
  it('returns the value, ends the span, keeps `this` and the arguments', async () => {
    const t = startTracing();
    const counter = {
      base: 10,
      add: withSpan('counter.add', function (this: { base: number }, n: number) {
        return this.base + n;
      }),
    };
    expect(counter.add(5)).toBe(15);
    const [span] = await t.spans();
    expect(span?.name).toBe('counter.add');
    expect(span?.kind).toBe(SpanKind.INTERNAL);
    expect(span?.ended).toBe(true);
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.instrumentationScope.name).toBe('@amas/otel');
  });

  it('records a throw (exception event, error.type, status ERROR) and rethrows the same error', async () => {
    const t = startTracing();
    const boom = new RangeError('too big');
    const fails = withSpan('fails', () => {
      throw boom;
    });
    expect(() => fails()).toThrow(boom);
    const [span] = await t.spans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'too big' });
    expect(span?.attributes['error.type']).toBe('RangeError');
    expect(span?.events[0]?.name).toBe('exception');
    expect(span?.events[0]?.attributes?.['exception.type']).toBe('RangeError');
  });

  it('uses an error code as error.type when the error has one', async () => {
    const t = startTracing();
    const err = Object.assign(new Error('expired'), { code: 'token_expired' });
    expect(() =>
      withSpan('verify', () => {
        throw err;
      })(),
    ).toThrow(err);
    expect((await t.spans())[0]?.attributes['error.type']).toBe('token_expired');
  });

  it('sets static attributes, or attributes mapped from the arguments', async () => {
    const t = startTracing();
    withSpan('static', () => 1, { attributes: { 'tool.name': 'search' } })();
    withSpan('mapped', (_role: string, n: number) => n, {
      attributes: (role, n) => ({ 'tool.role': role, 'tool.count': n }),
    })('analyst', 3);
    const spans = await t.spans();
    expect(byName(spans, 'static').attributes).toEqual({ 'tool.name': 'search' });
    expect(byName(spans, 'mapped').attributes).toEqual({ 'tool.role': 'analyst', 'tool.count': 3 });
  });

  it('still runs the call when the attribute mapper throws', async () => {
    const t = startTracing();
    const f = withSpan('mapper-fails', (x: number) => x * 2, {
      attributes: () => {
        throw new Error('mapper bug');
      },
    });
    expect(f(21)).toBe(42);
    const [span] = await t.spans();
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toEqual({});
  });

  it('nests spans started inside under the wrapping span', async () => {
    const t = startTracing();
    const inner = withSpan('inner', () => trace.getActiveSpan()?.spanContext().spanId);
    const outer = withSpan('outer', () => inner());
    outer();
    const spans = await t.spans();
    const o = byName(spans, 'outer');
    const i = byName(spans, 'inner');
    expect(i.parentSpanContext?.spanId).toBe(o.spanContext().spanId);
    expect(i.spanContext().traceId).toBe(o.spanContext().traceId);
  });

  it('starts a new trace with root: true', async () => {
    const t = startTracing();
    withSpan('outer', () => withSpan('detached', () => {}, { root: true })())();
    const spans = await t.spans();
    expect(byName(spans, 'detached').parentSpanContext).toBeUndefined();
    expect(byName(spans, 'detached').spanContext().traceId).not.toBe(
      byName(spans, 'outer').spanContext().traceId,
    );
  });

  it('rejects a missing name or function with config_invalid', () => {
    for (const bad of [
      () => withSpan('', () => {}),
      () => withSpan('x', 'not a function' as unknown as () => void),
    ]) {
      let caught: unknown;
      try {
        bad();
      } catch (err) {
        caught = err;
      }
      expect(isTelemetryError(caught) && caught.code).toBe('config_invalid');
    }
  });
});

describe('withSpan on async functions', () => {
  it('ends the span when the promise resolves, covering the awaited work', async () => {
    const t = startTracing();
    const slow = withSpan('slow', async (ms: number) => {
      await new Promise((r) => setTimeout(r, ms));
      return withSpan('after-await', () => 'done')();
    });
    await expect(slow(20)).resolves.toBe('done');
    const spans = await t.spans();
    const s = byName(spans, 'slow');
    expect(byName(spans, 'after-await').parentSpanContext?.spanId).toBe(s.spanContext().spanId);
    const ms = s.duration[0] * 1e3 + s.duration[1] / 1e6;
    expect(ms).toBeGreaterThanOrEqual(15);
  });

  it('records a rejection and rejects with the same error', async () => {
    const t = startTracing();
    const err = new Error('denied');
    await expect(withSpan('rejects', async () => Promise.reject(err))()).rejects.toBe(err);
    const [span] = await t.spans();
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.events.map((e) => e.name)).toEqual(['exception']);
  });
});

describe('withSpan on async iterators', () => {
  it('keeps the span open for the whole iteration and nests work done while iterating', async () => {
    const t = startTracing();
    const child = withSpan('chunk', (n: number) => n);
    const stream = withSpan('stream', async function* (count: number) {
      for (let i = 0; i < count; i++) {
        await new Promise((r) => setTimeout(r, 5));
        yield child(i);
      }
    });
    const seen: number[] = [];
    for await (const n of stream(3)) seen.push(n);
    expect(seen).toEqual([0, 1, 2]);
    const spans = await t.spans();
    const s = byName(spans, 'stream');
    const chunks = spans.filter((x) => x.name === 'chunk');
    expect(chunks).toHaveLength(3);
    for (const c of chunks) expect(c.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
    expect(s.ended).toBe(true);
    const ms = s.duration[0] * 1e3 + s.duration[1] / 1e6;
    expect(ms).toBeGreaterThanOrEqual(10);
  });

  it('ends the span when the consumer breaks out early, without an error', async () => {
    const t = startTracing();
    let finalized = false;
    const stream = withSpan('endless', async function* () {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finalized = true;
      }
    });
    for await (const n of stream()) if (n === 2) break;
    expect(finalized).toBe(true);
    const [span] = await t.spans();
    expect(span?.name).toBe('endless');
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('records an error thrown during the iteration', async () => {
    const t = startTracing();
    const stream = withSpan('broken', async function* () {
      yield 1;
      throw new TypeError('upstream closed');
    });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const n of stream()) seen.push(n);
      })(),
    ).rejects.toThrow('upstream closed');
    expect(seen).toEqual([1]);
    const [span] = await t.spans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'upstream closed' });
    expect(span?.attributes['error.type']).toBe('TypeError');
  });

  it('treats plain iterables (arrays) as plain values', async () => {
    const t = startTracing();
    expect(withSpan('list', () => [1, 2])()).toEqual([1, 2]);
    expect((await t.spans())[0]?.ended).toBe(true);
  });
});

describe('withSpan when the span is not sampled', () => {
  it('does not run the attribute mapper and exports nothing', async () => {
    const t = startTracing({ sampler: 'always_off' });
    let mapped = 0;
    const f = withSpan('unsampled', (x: number) => x + 1, {
      attributes: () => {
        mapped++;
        return {};
      },
    });
    expect(f(1)).toBe(2);
    expect(mapped).toBe(0);
    expect(await t.spans()).toEqual([]);
  });

  it('enters no new context under an unsampled parent, and its children stay unsampled', async () => {
    const t = startTracing({ samplerRatio: 1 });
    const parent = propagation.extract(context.active(), {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00',
    });
    let inside: unknown;
    const child = withSpan('child', () => 'ok');
    const f = withSpan('unsampled-child', () => {
      inside = context.active();
      return child();
    });
    expect(context.with(parent, f)).toBe('ok');
    expect(inside).toBe(parent);
    expect(await t.spans()).toEqual([]);
  });

  it('starts no span at all under an unsampled parent when its own parent-based sampler decides', () => {
    startTracing();
    const startSpan = vi.spyOn(amasTracer(), 'startSpan');
    const f = withSpan('child', () => 'ok');
    const unsampled = propagation.extract(context.active(), {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00',
    });
    expect(context.with(unsampled, f)).toBe('ok');
    expect(startSpan).not.toHaveBeenCalled();
    const sampled = propagation.extract(context.active(), {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    context.with(sampled, f);
    expect(startSpan).toHaveBeenCalledTimes(1);
    startSpan.mockRestore();
  });

  it('asks a custom sampler even under an unsampled parent (it may sample anyway)', async () => {
    const t = startTracing({ sampler: new AlwaysOnSampler() });
    const unsampled = propagation.extract(context.active(), {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00',
    });
    context.with(
      unsampled,
      withSpan('sampled-anyway', () => {}),
    );
    expect((await t.spans()).map((s) => s.name)).toEqual(['sampled-anyway']);
  });

  it('propagates "not sampled" from an unsampled root to its children', async () => {
    const t = startTracing({ samplerRatio: 0 });
    const seen: boolean[] = [];
    withSpan('root', () => {
      seen.push(trace.getActiveSpan()?.isRecording() ?? true);
      withSpan('child', () => seen.push(trace.getActiveSpan()?.isRecording() ?? true))();
    })();
    expect(seen).toEqual([false, false]);
    expect(await t.spans()).toEqual([]);
  });
});
