import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, json, listen, makeKey, sign } from './helpers.js';
import { recordSpans } from './spans.js';

// Spans leave the process (to a collector, to a vendor): nothing of a token, its claims or a
// response body may ride on them, on the cache-hit path as much as on the miss path.

const recorder = recordSpans();
let idp: TestIssuer;

beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
});
afterAll(() => idp.close());
beforeEach(() => recorder.exporter.reset());

function everythingRecorded(): string {
  return JSON.stringify(
    recorder.exporter.getFinishedSpans().map((s) => [s.name, s.attributes, s.status, s.events, s.links]),
  );
}

const verifySpans = () => recorder.spans('amas.oidc.verify');

describe('spans under attack', () => {
  it.each([
    ['200 characters', 'k'.repeat(200)],
    ['non-ASCII', 'clé-2026'],
    ['a space', 'key one'],
    ['a control character', 'key\u0007'],
  ])('never record a kid of %s, on a miss or on a cache hit', async (_name, kid) => {
    const key = await makeKey('ES256', kid);
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [key.publicJwk] });
    const token = await sign(key);
    const first = await v.verify(token);
    expect(await v.verify(token)).toBe(first);
    const spans = verifySpans();
    expect(spans.map((s) => s.attributes['amas.oidc.cache'])).toEqual(['miss', 'hit']);
    for (const span of spans) {
      expect(span.attributes['amas.oidc.outcome']).toBe('ok');
      expect(span.attributes['amas.oidc.kid']).toBeUndefined();
    }
    await v.close();
  });

  it('records a printable kid on both paths alike', async () => {
    const v = createVerifier(idp.verifierOptions());
    const token = await idp.mint();
    await v.verify(token);
    await v.verify(token);
    expect(verifySpans().map((s) => s.attributes['amas.oidc.kid'])).toEqual([idp.kid, idp.kid]);
    await v.close();
  });

  it('never carries the token, the subject, scopes or any claim, whether verified, cached or refused', async () => {
    const v = createVerifier(idp.verifierOptions());
    const claims = {
      sub: 'alice@example.com',
      scope: 'payroll:read',
      ssn: '078-05-1120',
      name: 'Alice Liddell',
    };
    const good = await idp.mint(claims);
    await v.verify(good);
    await v.verify(good);
    const refused = [
      await idp.mint(claims, { expiresIn: -60 }),
      await idp.mint({ ...claims, aud: 'https://other.test' }),
      await idp.mint(claims, { header: { kid: 'no-such-key' } }),
      `${good.split('.').slice(0, 2).join('.')}.${'A'.repeat(342)}`,
    ];
    for (const token of refused) await v.verify(token).catch(() => {});
    expect(verifySpans()).toHaveLength(2 + refused.length);
    const recorded = everythingRecorded();
    for (const token of [good, ...refused]) {
      for (const part of token.split('.').filter((p) => p.length >= 8)) expect(recorded).not.toContain(part);
    }
    for (const value of Object.values(claims)) expect(recorded).not.toContain(value);
    await v.close();
  });

  it('never carries what a failing JWKS endpoint answered', async () => {
    const leak = 'eyJhbGciOiJSUzI1NiJ9.leaked-secret';
    const bodies = [
      (res: import('node:http').ServerResponse) => json(res, 500, { error: leak }),
      (res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`<html>${leak}</html>`);
      },
      (res: import('node:http').ServerResponse) =>
        json(res, 200, { keys: [{ kty: 'RSA', kid: leak, n: leak, e: 'AQAB' }] }),
      (res: import('node:http').ServerResponse) => json(res, 200, { keys: leak }),
      (res: import('node:http').ServerResponse) => {
        res.writeHead(302, { location: `https://attacker.test/${leak}` });
        res.end();
      },
    ];
    for (const body of bodies) {
      const server = await listen((_req, res) => body(res));
      const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: `${server.url}/jwks` });
      await v.warmUp().catch(() => {});
      const [refresh] = recorder.spans('amas.oidc.jwks_refresh');
      expect(refresh?.status.code).toBe(SpanStatusCode.ERROR);
      expect(everythingRecorded()).not.toContain('leaked-secret');
      expect(JSON.stringify(v.health())).not.toContain('leaked-secret');
      recorder.exporter.reset();
      await v.close();
      await server.close();
    }
  });

  it('never records an issuer the resolver refused or failed on, nor what the resolver threw', async () => {
    const refusing = createVerifier({ issuer: () => false, audience: AUDIENCE });
    const failing = createVerifier({
      issuer: (iss) => {
        throw new Error(`tenant lookup failed for ${iss} with password hunter2`);
      },
      audience: AUDIENCE,
    });
    const token = await idp.mint({ iss: 'https://tenant-x.attacker.test/' });
    await refusing.verify(token).catch(() => {});
    await failing.verify(token).catch(() => {});
    const [refused, failed] = verifySpans();
    expect(refused?.attributes['amas.oidc.outcome']).toBe('issuer_mismatch');
    expect(failed?.attributes['amas.oidc.outcome']).toBe('discovery_failed');
    expect(failed?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'discovery_failed' });
    const recorded = everythingRecorded();
    expect(recorded).not.toContain('attacker.test');
    expect(recorded).not.toContain('hunter2');
    await refusing.close();
    await failing.close();
  });
});
