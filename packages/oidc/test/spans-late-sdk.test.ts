import { ProxyTracer, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, makeKey, rejectsWith, sign } from './helpers.js';

// No SDK is registered when this file starts (each test file runs in its own module graph).
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});

describe('spans when the SDK starts after the verifier', () => {
  it('starts no span while no SDK was ever registered, and records every verification once one is', async () => {
    const startSpan = vi.spyOn(ProxyTracer.prototype, 'startSpan');
    const key = await makeKey('ES256');
    const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [key.publicJwk] });
    const token = await sign(key);
    const first = await verifier.verify(token);
    expect(await verifier.verify(token)).toBe(first);
    await rejectsWith(verifier.verify(await sign(key, { aud: 'elsewhere' })), 'audience_mismatch', 401);
    await rejectsWith(verifier.verify('not.a.token'), 'token_malformed', 401);
    expect(startSpan).not.toHaveBeenCalled();

    trace.setGlobalTracerProvider(provider);
    const other = await sign(key, { sub: 'bob' });
    await verifier.verify(other);
    await verifier.verify(other);
    await verifier.verify(token);
    await rejectsWith(verifier.verify(await sign(key, { aud: 'elsewhere' })), 'audience_mismatch', 401);
    expect(startSpan).toHaveBeenCalledTimes(4);
    const spans = exporter.getFinishedSpans().filter((s) => s.name === 'amas.oidc.verify');
    expect(spans.map((s) => [s.attributes['amas.oidc.cache'], s.attributes['amas.oidc.outcome']])).toEqual([
      ['miss', 'ok'],
      ['hit', 'ok'],
      ['hit', 'ok'],
      ['miss', 'audience_mismatch'],
    ]);
    expect(spans[0]?.attributes).toEqual({
      'amas.oidc.cache': 'miss',
      'amas.oidc.algorithm': 'ES256',
      'amas.oidc.kid': key.kid,
      'amas.oidc.issuer': ISSUER,
      'amas.oidc.outcome': 'ok',
    });
    startSpan.mockRestore();
    await verifier.close();
  });
});
