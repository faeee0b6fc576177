import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestIssuer, type FailureMode, type FailureOptions, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, type Listening, listen, sleep } from './helpers.js';

// Every fault of the key source, during a cold start (no keys yet: 503 jwks_unavailable, never 401
// or 500, promptly) and after warm-up (the cached keys keep verifying: stale-if-error).

let idp: TestIssuer;
let elsewhere: Listening;
let elsewhereHits = 0;

beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
  elsewhere = await listen((_req, res) => {
    elsewhereHits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [] }));
  });
});
afterAll(async () => {
  await idp.close();
  await elsewhere.close();
});

const faults: Array<[string, FailureMode, FailureOptions, string]> = [
  ['down (connection reset)', 'down', {}, 'connection failed'],
  ['slow (past the timeout)', 'slow', { delayMs: 5000 }, 'timed out or aborted'],
  ['HTTP 500', 'error', { status: 500 }, 'HTTP 500'],
  ['invalid JSON', 'garbage', {}, 'response is not valid JSON'],
  ['a huge body', 'huge', { sizeBytes: 8 * 1024 * 1024 }, 'response body exceeds 524288 bytes'],
  ['thousands of keys', 'many-keys', { keyCount: 3000 }, 'the JWKS has 3000 keys, more than maxKeys (100)'],
  ['a redirect', 'redirect', {}, 'redirect (HTTP 302) refused'],
];

describe.concurrent.each(faults)('JWKS endpoint fault: %s', (_name, mode, options, reason) => {
  // Each test has its own issuer, so that the faults can run side by side.
  it('answers 503 jwks_unavailable on a cold start, promptly, and reports why', async () => {
    const own = await createTestIssuer({ audience: AUDIENCE, algorithm: 'ES256' }); // small keys: 3000 fit in maxBytes
    own.fail(mode, { ...options, location: `${elsewhere.url}/jwks` });
    const verifier = createVerifier({ ...own.verifierOptions(), jwks: { timeout: 0.5 } });
    try {
      const started = Date.now();
      const err = await verifier.verify(await own.mint()).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'jwks_unavailable', status: 503 });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(verifier.health()).toMatchObject({
        ready: false,
        status: 'down',
        issuers: [{ status: 'down', lastError: { reason } }],
      });
    } finally {
      await verifier.close();
      await own.close();
    }
    expect(elsewhereHits).toBe(0);
  });

  it('keeps verifying with the cached keys after warm-up', async () => {
    const own = await createTestIssuer({ audience: AUDIENCE, algorithm: 'ES256' });
    const verifier = createVerifier({
      ...own.verifierOptions(),
      cache: false,
      jwks: { cacheTtl: 1, cooldown: 0.1, timeout: 0.5 },
    });
    try {
      await verifier.warmUp();
      own.fail(mode, { ...options, location: `${elsewhere.url}/jwks` });
      await sleep(1100);
      await expect(verifier.verify(await own.mint())).resolves.toBeDefined();
      const started = Date.now();
      await expect(verifier.verify(await own.mint())).resolves.toBeDefined();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(verifier.health().issuers[0]?.status).toBe('stale');
    } finally {
      await verifier.close();
      await own.close();
    }
  });
});

describe('discovery faults', () => {
  it('answers 503 discovery_failed when discovery is down on a cold start', async () => {
    idp.fail('down', { target: 'discovery' });
    try {
      const v = createVerifier(idp.verifierOptions());
      await expect(v.verify(await idp.mint())).rejects.toMatchObject({
        code: 'discovery_failed',
        status: 503,
      });
    } finally {
      idp.recover();
    }
  });

  it('refuses a discovery document that names another issuer', async () => {
    const liar = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: 'https://someone-else.test', jwks_uri: idp.jwksUri }));
    });
    const v = createVerifier({ issuer: liar.url, audience: AUDIENCE });
    await expect(v.warmUp()).rejects.toMatchObject({ code: 'discovery_failed' });
    expect(v.health().issuers[0]?.lastError?.reason).toBe('the discovery document names a different issuer');
    await liar.close();
  });

  it('takes algorithms from access_token_signing_alg_values_supported, not the ID-token list', async () => {
    const es = await createTestIssuer({ audience: AUDIENCE, algorithm: 'ES256' });
    const proxy = await listen(async (req, res) => {
      const upstream = await fetch(`${es.issuer}${req.url}`);
      const body = (await upstream.json()) as Record<string, unknown>;
      if (req.url?.includes('openid-configuration')) {
        Object.assign(body, {
          issuer: es.issuer,
          id_token_signing_alg_values_supported: ['RS256', 'ES256'],
          access_token_signing_alg_values_supported: ['PS256'],
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    const verifier = createVerifier({
      issuer: [{ issuer: es.issuer, discoveryUri: `${proxy.url}/.well-known/openid-configuration` }],
      audience: AUDIENCE,
    });
    await expect(verifier.verify(await es.mint())).rejects.toMatchObject({ code: 'algorithm_not_allowed' });
    await verifier.close();
    await proxy.close();
    await es.close();
  });
});
