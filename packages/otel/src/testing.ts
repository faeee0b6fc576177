import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** An attribute value as decoded from OTLP JSON. */
export type DecodedValue =
  | string
  | number
  | boolean
  | null
  | DecodedValue[]
  | { [key: string]: DecodedValue };

/** One span as received, with attributes as a plain object. */
export interface ReceivedSpan {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  /** Empty string for a root span. */
  readonly parentSpanId: string;
  /** OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, DecodedValue>>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message?: string };
  readonly events: readonly {
    readonly name: string;
    readonly attributes: Readonly<Record<string, DecodedValue>>;
  }[];
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly resource: Readonly<Record<string, DecodedValue>>;
  readonly scope: { readonly name: string; readonly version?: string };
}

/** An OTLP/HTTP JSON receiver for tests; see {@link startOtlpReceiver}. */
export interface OtlpReceiver {
  /** The traces endpoint, `http://127.0.0.1:<port>/v1/traces`. */
  readonly url: string;
  /** The base URL, for `endpoint` / `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly baseUrl: string;
  /** Every span received so far, in arrival order. */
  readonly spans: readonly ReceivedSpan[];
  /** Headers of every export request received so far. */
  readonly requests: readonly { readonly headers: IncomingHttpHeaders; readonly spanCount: number }[];
  /** Resolves once at least `count` spans arrived (rejects after `timeoutMs`, default 10000). */
  waitForSpans(count: number, options?: { timeoutMs?: number }): Promise<readonly ReceivedSpan[]>;
  /** Answer the next export requests with this HTTP status instead of 200 (to test export failures). */
  failWith(status: number | undefined): void;
  /** Forgets the spans and requests received so far. */
  clear(): void;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024 * 1024;

/**
 * Starts an OTLP/HTTP receiver on 127.0.0.1 that decodes the JSON the OpenTelemetry JS exporter sends
 * (gzip too), so that tests can assert on real exported spans: names, attributes, parent/child links.
 *
 * @example
 * ```ts
 * import { setupTelemetry } from '@amas/otel';
 * import { startOtlpReceiver } from '@amas/otel/testing';
 *
 * const receiver = await startOtlpReceiver();
 * const telemetry = setupTelemetry({ serviceName: 'test', endpoint: receiver.baseUrl, logger: false });
 * // ... exercise the app ...
 * await telemetry.forceFlush();
 * const [span] = await receiver.waitForSpans(1);
 * expect(span.attributes['http.route']).toBe('/tools/:name');
 * await telemetry.shutdown();
 * await receiver.close();
 * ```
 */
export async function startOtlpReceiver(options: { port?: number } = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: { headers: IncomingHttpHeaders; spanCount: number }[] = [];
  const waiters = new Set<() => void>();
  let failStatus: number | undefined;

  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      if (failStatus !== undefined) {
        res.writeHead(failStatus, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      let decoded: ReceivedSpan[];
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        decoded = decodeOtlpJson(JSON.parse(body.toString('utf8')));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"message":"malformed OTLP JSON"}');
        return;
      }
      spans.push(...decoded);
      requests.push({ headers: req.headers, spanCount: decoded.length });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    url: `${baseUrl}/v1/traces`,
    baseUrl,
    get spans() {
      return spans;
    },
    get requests() {
      return requests;
    },
    waitForSpans(count, { timeoutMs = 10_000 } = {}) {
      if (spans.length >= count) return Promise.resolve(spans);
      return new Promise((resolve, reject) => {
        const wake = (): void => {
          if (spans.length < count) return;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(spans);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`waited ${timeoutMs} ms for ${count} spans, received ${spans.length}`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    failWith(status) {
      failStatus = status;
    },
    clear() {
      spans.length = 0;
      requests.length = 0;
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}

/**
 * Decodes an OTLP/JSON `ExportTraceServiceRequest` into flat spans. Throws on a body that is not one.
 *
 * @example
 * ```ts
 * const spans = decodeOtlpJson(JSON.parse(body));
 * ```
 */
export function decodeOtlpJson(body: unknown): ReceivedSpan[] {
  const root = body as { resourceSpans?: unknown };
  if (typeof root !== 'object' || root === null || !Array.isArray(root.resourceSpans)) {
    throw new TypeError('not an OTLP ExportTraceServiceRequest: resourceSpans is missing');
  }
  const out: ReceivedSpan[] = [];
  for (const rs of root.resourceSpans as {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { scope?: { name?: string; version?: string }; spans?: Record<string, unknown>[] }[];
  }[]) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = {
        name: ss.scope?.name ?? '',
        ...(ss.scope?.version ? { version: ss.scope.version } : {}),
      };
      for (const s of ss.spans ?? []) {
        const status = (s.status ?? {}) as { code?: number; message?: string };
        out.push({
          name: String(s.name ?? ''),
          traceId: String(s.traceId ?? ''),
          spanId: String(s.spanId ?? ''),
          parentSpanId: String(s.parentSpanId ?? ''),
          kind: Number(s.kind ?? 0),
          attributes: attributesOf(s.attributes as OtlpKeyValue[] | undefined),
          status: { code: Number(status.code ?? 0), ...(status.message ? { message: status.message } : {}) },
          events: ((s.events ?? []) as { name?: string; attributes?: OtlpKeyValue[] }[]).map((e) => ({
            name: String(e.name ?? ''),
            attributes: attributesOf(e.attributes),
          })),
          startTimeUnixNano: String(s.startTimeUnixNano ?? ''),
          endTimeUnixNano: String(s.endTimeUnixNano ?? ''),
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, DecodedValue> {
  const out: Record<string, DecodedValue> = {};
  for (const kv of list ?? []) out[kv.key] = decodeValue(kv.value);
  return out;
}

function decodeValue(v: OtlpAnyValue | undefined): DecodedValue {
  if (v === undefined || v === null) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(decodeValue);
  if (v.kvlistValue !== undefined) return attributesOf(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return v.bytesValue;
  return null;
}
