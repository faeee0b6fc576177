import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { setupTelemetry } from '../src/setup.js';
import { decodeOtlpJson, type OtlpReceiver, startOtlpReceiver } from '../src/testing.js';

let receiver: OtlpReceiver;
afterEach(async () => {
  await receiver?.close();
});

describe('startOtlpReceiver()', () => {
  it('listens on 127.0.0.1 only and decodes what the exporter sends, gzip included', async () => {
    receiver = await startOtlpReceiver();
    expect(receiver.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/traces$/);
    const handle = setupTelemetry({
      serviceName: 'gz',
      endpoint: receiver.baseUrl,
      compression: 'gzip',
      env: {},
      esmLoaderHook: false,
      logger: false,
    });
    trace
      .getTracer('t')
      .startSpan('zipped', { attributes: { n: 3, ok: true, ratio: 0.5, tags: ['a', 'b'] } })
      .end();
    await handle.shutdown();
    const [span] = await receiver.waitForSpans(1);
    expect(receiver.requests[0]?.headers['content-encoding']).toBe('gzip');
    expect(span).toMatchObject({
      name: 'zipped',
      attributes: { n: 3, ok: true, ratio: 0.5, tags: ['a', 'b'] },
      resource: { 'service.name': 'gz' },
      scope: { name: 't' },
      status: { code: 0 },
    });
  });

  it('answers 400 to a body that is not OTLP JSON and 404 elsewhere, and keeps nothing', async () => {
    receiver = await startOtlpReceiver();
    const post = (body: string) =>
      fetch(receiver.url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect((await post('{not json')).status).toBe(400);
    expect((await post('{"resourceSpans":"no"}')).status).toBe(400);
    expect((await fetch(`${receiver.baseUrl}/v1/metrics`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect(receiver.spans).toEqual([]);
  });

  it('answers with the status it is told to fail with, then recovers', async () => {
    receiver = await startOtlpReceiver();
    receiver.failWith(503);
    const body = JSON.stringify({ resourceSpans: [] });
    expect((await fetch(receiver.url, { method: 'POST', body })).status).toBe(503);
    receiver.failWith(undefined);
    expect((await fetch(receiver.url, { method: 'POST', body })).status).toBe(200);
  });

  it('rejects waitForSpans after its timeout, saying how many spans came', async () => {
    receiver = await startOtlpReceiver();
    await expect(receiver.waitForSpans(1, { timeoutMs: 50 })).rejects.toThrow(
      'waited 50 ms for 1 spans, received 0',
    );
  });
});

describe('decodeOtlpJson()', () => {
  it('flattens resource, scope, attributes, events and status', () => {
    const [span] = decodeOtlpJson({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] },
          scopeSpans: [
            {
              scope: { name: 's', version: '1' },
              spans: [
                {
                  traceId: 'a'.repeat(32),
                  spanId: 'b'.repeat(16),
                  name: 'x',
                  kind: 2,
                  attributes: [
                    { key: 'i', value: { intValue: '42' } },
                    {
                      key: 'kv',
                      value: { kvlistValue: { values: [{ key: 'k', value: { boolValue: false } }] } },
                    },
                  ],
                  events: [
                    {
                      name: 'exception',
                      attributes: [{ key: 'exception.type', value: { stringValue: 'E' } }],
                    },
                  ],
                  status: { code: 2, message: 'boom' },
                },
              ],
            },
          ],
        },
      ],
    });
    expect(span).toMatchObject({
      name: 'x',
      parentSpanId: '',
      kind: 2,
      attributes: { i: 42, kv: { k: false } },
      events: [{ name: 'exception', attributes: { 'exception.type': 'E' } }],
      status: { code: 2, message: 'boom' },
      resource: { 'service.name': 'api' },
      scope: { name: 's', version: '1' },
    });
  });

  it('throws on anything that is not an export request', () => {
    expect(() => decodeOtlpJson({})).toThrow(/resourceSpans is missing/);
    expect(() => decodeOtlpJson(null)).toThrow(TypeError);
  });
});
