import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, makeKey, sign } from './helpers.js';
import { recordSpans } from './spans.js';

const recorder = recordSpans();
let idp: TestIssuer;

beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
});
afterAll(() => idp.close());
beforeEach(() => recorder.exporter.reset());

/** Every attribute value and status message of every recorded span, as one string. */
function everythingRecorded(): string {
  return JSON.stringify(
    recorder.exporter.getFinishedSpans().map((s) => [s.name, s.attributes, s.status, s.events]),
  );
}

describe('spans', () => {
  it('records amas.oidc.verify with issuer, kid, algorithm and outcome, and never the token or subject', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    const token = await idp.mint({ sub: 'alice@example.com' });
    await verifier.verify(token);
    const [span] = recorder.spans('amas.oidc.verify');
    expect(span?.attributes).toEqual({
      'amas.oidc.cache': 'miss',
      'amas.oidc.algorithm': 'RS256',
      'amas.oidc.kid': idp.kid,
      'amas.oidc.issuer': idp.issuer,
      'amas.oidc.outcome': 'ok',
    });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    const recorded = everythingRecorded();
    for (const part of token.split('.')) expect(recorded).not.toContain(part);
    expect(recorded).not.toContain('alice@example.com');
    await verifier.close();
  });

  it('records the JWKS refresh with its trigger and outcome', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    await verifier.warmUp();
    const [refresh] = recorder.spans('amas.oidc.jwks_refresh');
    expect(refresh?.attributes).toEqual({
      'amas.oidc.issuer': idp.issuer,
      'amas.oidc.trigger': 'warm_up',
      'amas.oidc.outcome': 'ok',
      'amas.oidc.keys': 1,
    });
    await verifier.close();
  });

  it('records a refused token by code, without an error status, and without an unlisted issuer', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    const attacker = await makeKey('RS256');
    await verifier.verify(await sign(attacker, { iss: 'https://attacker.test/' })).catch(() => {});
    const [span] = recorder.spans('amas.oidc.verify');
    expect(span?.attributes['amas.oidc.outcome']).toBe('issuer_mismatch');
    expect(span?.attributes['amas.oidc.issuer']).toBeUndefined();
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(everythingRecorded()).not.toContain('attacker.test');
  });

  it('records the issuer of an allowed issuer when its token fails', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    await verifier.verify(await idp.mint({}, { expiresIn: -60 })).catch(() => {});
    const [span] = recorder.spans('amas.oidc.verify');
    expect(span?.attributes).toMatchObject({
      'amas.oidc.issuer': idp.issuer,
      'amas.oidc.outcome': 'token_expired',
    });
    await verifier.close();
  });

  it('does not record a hostile kid', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    const attacker = await makeKey('RS256');
    await verifier
      .verify(await sign(attacker, { iss: idp.issuer }, { kid: 'x\r\nInjected: 1' }))
      .catch(() => {});
    expect(everythingRecorded()).not.toContain('Injected');
    await verifier.close();
  });

  it('marks outages as errors', async () => {
    const down = await createTestIssuer({ audience: AUDIENCE });
    down.fail('error', { status: 500 });
    const verifier = createVerifier(down.verifierOptions());
    await verifier.verify(await down.mint()).catch(() => {});
    const [span] = recorder.spans('amas.oidc.verify');
    expect(span?.attributes['amas.oidc.outcome']).toBe('jwks_unavailable');
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'jwks_unavailable' });
    const [refresh] = recorder.spans('amas.oidc.jwks_refresh');
    expect(refresh?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'HTTP 500' });
    await verifier.close();
    await down.close();
  });
});
