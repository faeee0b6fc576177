import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import {
  type Attributes,
  type Context,
  type Link,
  ROOT_CONTEXT,
  SpanKind,
  type SpanStatus,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { AmasOtlpTraceExporter } from '../src/otlp-exporter.js';
import { FastJsonTraceSerializer, serialize } from '../src/otlp-json.js';

// The fast serializer must write exactly the official serializer's bytes (ADR 0045): every test compares
// the two byte for byte, and checks that the fast path itself wrote the batch (not its fallback).

const official = (spans: ReadableSpan[]) =>
  Buffer.from(JsonTraceSerializer.serializeRequest(spans) as Uint8Array);
const fast = (spans: ReadableSpan[]) => Buffer.from(serialize(spans));

function expectSameBytes(spans: ReadableSpan[]): void {
  const want = official(spans);
  const got = fast(spans);
  if (!got.equals(want)) expect(got.toString()).toBe(want.toString());
  expect(Buffer.from(FastJsonTraceSerializer.serializeRequest(spans)).equals(want)).toBe(true);
  // And it is JSON.
  JSON.parse(got.toString());
}

const providers: BasicTracerProvider[] = [];
afterAll(async () => {
  for (const p of providers) await p.shutdown();
});

function recorder(
  resource: Attributes = { 'service.name': 'svc' },
  schemaUrl?: string,
  memory = new InMemorySpanExporter(),
) {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resource, schemaUrl === undefined ? undefined : { schemaUrl }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
    spanLimits: { attributeValueLengthLimit: 10_000 },
  });
  providers.push(provider);
  return { provider, memory };
}

/** Strings with everything JSON must escape: quotes, backslashes, control characters, lone surrogates. */
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '',
    '"',
    '\\',
    '\u0000',
    '\n\t',
    '\u2028',
    '\ud800',
    '\udfff',
    'a\ud83d\ude00b',
    '\u007f',
    '</script>',
  ),
);
const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 1e21, -1e-7, Number.MAX_SAFE_INTEGER + 2, Number.NaN, Number.POSITIVE_INFINITY, 0.1),
);
const primitive = fc.oneof(text, number, fc.boolean());
const attributeValue = fc.oneof(
  primitive,
  fc.array(text, { maxLength: 3 }),
  fc.array(number, { maxLength: 3 }),
  fc.array(fc.boolean(), { maxLength: 3 }),
);
const attributes = fc.dictionary(text, attributeValue, { maxKeys: 6 });
const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));

interface Recipe {
  name: string;
  kind: SpanKind;
  attributes: Attributes;
  later: Attributes;
  events: { name: string; attributes?: Attributes; time?: number }[];
  links: { traceId: string; spanId: string; attributes?: Attributes; remote: boolean; state?: string }[];
  status?: SpanStatus;
  parent?: { traceId: string; spanId: string; sampled: boolean; remote: boolean; state?: string };
  scope: number;
  rename?: string;
  startTime?: number;
}

const recipe: fc.Arbitrary<Recipe> = fc.record(
  {
    name: text,
    kind: fc.constantFrom(
      SpanKind.INTERNAL,
      SpanKind.SERVER,
      SpanKind.CLIENT,
      SpanKind.PRODUCER,
      SpanKind.CONSUMER,
    ),
    attributes,
    later: attributes,
    events: fc.array(
      fc.record(
        { name: text, attributes, time: fc.integer({ min: 1, max: 2_000_000_000_000 }) },
        { requiredKeys: ['name'] },
      ),
      { maxLength: 2 },
    ),
    links: fc.array(
      fc.record(
        {
          traceId: hex(32),
          spanId: hex(16),
          attributes,
          remote: fc.boolean(),
          state: fc.constantFrom('a=1', 'x=y,z=w'),
        },
        { requiredKeys: ['traceId', 'spanId', 'remote'] },
      ),
      { maxLength: 2 },
    ),
    status: fc.oneof(
      fc.constant({ code: 1 }),
      fc.record({ code: fc.constant(2), message: fc.option(text, { nil: undefined }) }),
    ) as fc.Arbitrary<SpanStatus>,
    parent: fc.record(
      {
        traceId: hex(32),
        spanId: hex(16),
        sampled: fc.boolean(),
        remote: fc.boolean(),
        state: fc.constantFrom('k=v'),
      },
      { requiredKeys: ['traceId', 'spanId', 'sampled', 'remote'] },
    ),
    scope: fc.integer({ min: 0, max: 3 }),
    rename: text,
    startTime: fc.integer({ min: 1, max: 2_000_000_000_000 }),
  },
  { requiredKeys: ['name', 'kind', 'attributes', 'later', 'events', 'links', 'scope'] },
);

const SCOPES: [string, string | undefined, string | undefined][] = [
  ['@amas/otel', '1.2.3', undefined],
  ['@amas/oidc', undefined, undefined],
  ['weird "scope"\n', '0.0.1', 'https://opentelemetry.io/schemas/1.30.0'],
  ['@amas/otel', '1.2.3', 'https://example.com/schema'],
];

function make(provider: BasicTracerProvider, r: Recipe): void {
  const [scopeName, version, schemaUrl] = SCOPES[r.scope] as (typeof SCOPES)[number];
  const tracer = provider.getTracer(scopeName, version, schemaUrl === undefined ? {} : { schemaUrl });
  const links: Link[] = r.links.map((l) => ({
    context: {
      traceId: l.traceId,
      spanId: l.spanId,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: l.remote,
      ...(l.state === undefined ? {} : { traceState: new TraceState(l.state) }),
    },
    ...(l.attributes === undefined ? {} : { attributes: l.attributes }),
  }));
  let ctx: Context | undefined;
  if (r.parent) {
    ctx = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: r.parent.traceId.replace(/^0{32}$/, '1'.repeat(32)),
      spanId: r.parent.spanId.replace(/^0{16}$/, '1'.repeat(16)),
      traceFlags: r.parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      isRemote: r.parent.remote,
      ...(r.parent.state === undefined ? {} : { traceState: new TraceState(r.parent.state) }),
    });
  }
  const span = tracer.startSpan(
    r.name,
    {
      kind: r.kind,
      attributes: r.attributes,
      links,
      ...(r.startTime === undefined ? {} : { startTime: r.startTime }),
    },
    ctx,
  );
  span.setAttributes(r.later);
  for (const e of r.events) span.addEvent(e.name, e.attributes, e.time);
  if (r.status) span.setStatus(r.status);
  if (r.rename !== undefined) span.updateName(r.rename);
  span.end(r.startTime === undefined ? undefined : r.startTime + 5);
}

describe('FastJsonTraceSerializer', () => {
  it('writes the official bytes for a batch of SDK spans (property)', () => {
    fc.assert(
      fc.property(fc.array(recipe, { minLength: 1, maxLength: 8 }), fc.boolean(), (recipes, twoResources) => {
        // Two providers (resources) into one exporter: a batch with both, interleaved.
        const a = recorder({ 'service.name': 'a', 'service.version': '1' });
        const b = recorder(
          { 'service.name': 'b "q"', 'n.x': 3.5, ok: true },
          'https://example.com/r',
          a.memory,
        );
        for (const [i, r] of recipes.entries())
          make(twoResources && i % 2 === 1 ? b.provider : a.provider, r);
        expectSameBytes(a.memory.getFinishedSpans());
      }),
      { numRuns: 300 },
    );
  });

  it('writes the official bytes for a server span like traceRequests() makes, and an empty batch', () => {
    const { provider, memory } = recorder();
    const span = provider.getTracer('@amas/otel', '0.1.0').startSpan('GET', { kind: SpanKind.SERVER });
    span.setAttributes({
      'http.request.method': 'GET',
      'url.path': '/api/tools/search',
      'server.port': 8080,
      'http.response.status_code': 200,
    });
    span.updateName('GET /api/tools/:name');
    span.end();
    expectSameBytes(memory.getFinishedSpans());
    expectSameBytes([]);
  });

  it('writes the official bytes for attribute values the SDK does not make: bytes, maps, nested arrays', () => {
    const { provider, memory } = recorder();
    provider.getTracer('t').startSpan('s').end();
    const [base] = memory.getFinishedSpans() as [ReadableSpan];
    const odd = {
      bytes: new Uint8Array([0, 1, 254, 255]),
      map: { a: 1, b: ['x', 2.5, null], c: { d: false } },
      nested: [[1, 2], ['a']],
      nothing: null,
      undefined: undefined,
      big: 10n,
    } as unknown as Attributes;
    const span = Object.create(base, { attributes: { value: odd } }) as ReadableSpan;
    expectSameBytes([span]);
    // Scope attributes (newer APIs set them; this SDK does not), and an empty set of them.
    const scoped = (scope: object) =>
      Object.create(base, { instrumentationScope: { value: scope } }) as ReadableSpan;
    expectSameBytes([
      scoped({
        name: 'lib',
        version: '2',
        attributes: { 'lib.kind': 'db', n: 1 },
        droppedAttributesCount: 1,
      }),
      scoped({ name: 'lib2', attributes: {} }),
      scoped({ name: 'lib3', schemaUrl: '' }),
    ]);
  });

  it('hands a span of an unexpected shape to the official serializer, which decides', () => {
    const { provider, memory } = recorder();
    provider.getTracer('t').startSpan('s').end();
    const [base] = memory.getFinishedSpans() as [ReadableSpan];
    const shapes: Record<string, PropertyDescriptorMap> = {
      'no name': { name: { value: undefined } },
      'a number for a name': { name: { value: 42 } },
      'a string kind': { kind: { value: '1' } },
      'no dropped count': { droppedAttributesCount: { value: undefined } },
      'a NaN status code': { status: { value: { code: Number.NaN } } },
      'a time before 1970': { startTime: { value: [-5, 10] } },
      'a fraction of a second over 1e9': { endTime: { value: [1, 2_000_000_000] } },
    };
    for (const [label, descriptors] of Object.entries(shapes)) {
      const span = Object.create(base, descriptors) as ReadableSpan;
      const want = official([span]);
      expect(Buffer.from(FastJsonTraceSerializer.serializeRequest([span])).equals(want), label).toBe(true);
    }
    // A span the official serializer cannot write either fails the same way.
    const broken = Object.create(base, { startTime: { value: [Number.NaN, 0] } }) as ReadableSpan;
    expect(() => official([broken])).toThrow(RangeError);
    expect(() => FastJsonTraceSerializer.serializeRequest([broken])).toThrow(RangeError);
  });

  it('grows its buffer for spans larger than its first estimate', () => {
    const { provider, memory } = recorder();
    const span = provider.getTracer('t').startSpan('big');
    span.setAttribute('payload', '€'.repeat(5_000));
    span.setAttribute('escaped', '"\\'.repeat(2_000));
    span.end();
    expectSameBytes(memory.getFinishedSpans());
  });
});

describe('AmasOtlpTraceExporter', () => {
  interface Capture {
    url: string;
    requests: { headers: IncomingMessage['headers']; body: Buffer }[];
    close(): Promise<void>;
  }
  async function capture(): Promise<Capture> {
    const requests: Capture['requests'] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        requests.push({
          headers: req.headers,
          body: req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw,
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/v1/traces`,
      requests,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  function exportWith(exporter: { export: OTLPTraceExporter['export'] }, spans: ReadableSpan[]) {
    return new Promise<number>((resolve) => exporter.export(spans, (r) => resolve(r.code)));
  }

  it.each(['none', 'gzip'] as const)(
    'sends what the official OTLPTraceExporter sends (compression %s)',
    async (compression) => {
      const { provider, memory } = recorder();
      const tracer = provider.getTracer('@amas/otel', '1.0.0');
      for (let i = 0; i < 20; i++) {
        const span = tracer.startSpan(`op ${i}`, { attributes: { i, 'a"b': 'c\n' } });
        span.addEvent('e', { n: i });
        span.end();
      }
      const spans = memory.getFinishedSpans();
      const server = await capture();
      try {
        const options = {
          url: server.url,
          headers: { 'x-tenant': 'acme' },
          compression,
          timeoutMillis: 2_000,
        } as const;
        const theirs = new OTLPTraceExporter(options as never);
        const ours = new AmasOtlpTraceExporter(options as never);
        expect(await exportWith(theirs, spans)).toBe(0);
        expect(await exportWith(ours, spans)).toBe(0);
        await theirs.shutdown();
        await ours.shutdown();
        const [a, b] = server.requests as [Capture['requests'][number], Capture['requests'][number]];
        expect(b.body.equals(a.body)).toBe(true);
        for (const header of ['content-type', 'content-encoding', 'x-tenant', 'user-agent']) {
          expect(b.headers[header], header).toBe(a.headers[header]);
        }
      } finally {
        await server.close();
      }
    },
  );
});
