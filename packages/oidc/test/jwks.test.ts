import { randomUUID } from 'node:crypto';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticate } from '../src/express.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, eventually, jwksServer, listen, makeKey, rejectsWith, sign, sleep } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function issuer(): Promise<TestIssuer> {
  const idp = await createTestIssuer({ audience: AUDIENCE });
  cleanups.push(() => idp.close());
  return idp;
}

describe('key rotation', () => {
  it('accepts a token signed with a newly published key within 5 s of publication (defaults)', async () => {
    const idp = await issuer();
    const verifier = createVerifier(idp.verifierOptions());
    cleanups.push(() => verifier.close());
    await verifier.warmUp();
    await verifier.verify(await idp.mint());
    // Worst case: the key is published right after the verifier fetched the JWKS.
    await idp.rotate();
    const published = Date.now();
    const token = await idp.mint();
    let acceptedAfter = Number.POSITIVE_INFINITY;
    while (Date.now() - published < 10_000) {
      try {
        await verifier.verify(token);
        acceptedAfter = Date.now() - published;
        break;
      } catch (err) {
        expect(err).toMatchObject({ code: 'key_not_found', status: 401 });
        await sleep(100);
      }
    }
    expect(acceptedAfter).toBeLessThan(5000);
    // It did not get there by hammering the JWKS endpoint.
    expect(idp.requests.jwks).toBeLessThanOrEqual(3);
  });

  it('stops verifying keys removed from the JWKS once the JWKS is refreshed', async () => {
    const idp = await issuer();
    const verifier = createVerifier({
      ...idp.verifierOptions(),
      cache: false,
      jwks: { cacheTtl: 1, cooldown: 0.1 },
    });
    cleanups.push(() => verifier.close());
    const oldToken = await idp.mint();
    await verifier.verify(oldToken);
    const oldKid = idp.kid;
    await idp.rotate();
    idp.removeKey(oldKid);
    let code = '';
    const start = Date.now();
    while (Date.now() - start < 5000 && code === '') {
      await sleep(100);
      code = await verifier.verify(oldToken).then(
        () => '',
        (e: { code: string }) => e.code,
      );
    }
    expect(code).toBe('key_not_found');
    await expect(verifier.verify(await idp.mint())).resolves.toBeDefined();
  });

  it('refreshes ahead of expiry in the background, so verification never waits for it', async () => {
    const idp = await issuer();
    const verifier = createVerifier({
      ...idp.verifierOptions(),
      cache: false,
      jwks: { cacheTtl: 3, refreshAhead: 2.5, cooldown: 0.5 },
    });
    cleanups.push(() => verifier.close());
    await verifier.warmUp();
    await sleep(700); // inside the refresh-ahead window, past the cooldown
    idp.fail('slow', { delayMs: 2000 });
    const started = Date.now();
    await verifier.verify(await idp.mint());
    expect(Date.now() - started).toBeLessThan(1500);
    await eventually(() => idp.requests.jwks === 2);
    expect(verifier.health().issuers[0]?.status).toBe('ok');
  });
});

describe('unknown kid flood', () => {
  it('500 concurrent requests with random unknown kids cause at most 1 JWKS fetch and all get 401', async () => {
    const idp = await issuer();
    const auth = authenticate(idp.verifierOptions());
    cleanups.push(() => auth.verifier.close());
    const app = express();
    app.get('/', auth, (req, res) => {
      res.json({ sub: req.amas?.auth?.subject });
    });
    const server = await listen(app);
    cleanups.push(() => server.close());
    await auth.verifier.warmUp();
    await sleep(2100); // past the default cooldown, so the flood is allowed its one refetch
    idp.resetRequests();

    const attacker = await makeKey('RS256');
    const forged = await Promise.all(
      Array.from({ length: 500 }, () => sign(attacker, { iss: idp.issuer }, { kid: randomUUID() })),
    );
    const legit = await idp.mint({ sub: 'alice' });
    const started = Date.now();
    const responses = await Promise.all([
      ...forged.map((t) => fetch(server.url, { headers: { authorization: `Bearer ${t}` } })),
      fetch(server.url, { headers: { authorization: `Bearer ${legit}` } }),
    ]);
    const elapsed = Date.now() - started;
    const bodies = await Promise.all(
      responses.map((r) => r.json() as Promise<{ error?: string; sub?: string }>),
    );

    expect(responses.slice(0, 500).map((r) => r.status)).toEqual(Array(500).fill(401));
    expect(new Set(bodies.slice(0, 500).map((b) => b.error))).toEqual(new Set(['key_not_found']));
    expect(responses[500]?.status).toBe(200);
    expect(bodies[500]).toEqual({ sub: 'alice' });
    expect(idp.requests.jwks).toBeLessThanOrEqual(1);
    expect(idp.requests.discovery).toBe(0);
    expect(elapsed).toBeLessThan(30_000);
  });

  it('answers a repeated unknown kid from the negative cache without fetching', async () => {
    const idp = await issuer();
    const verifier = createVerifier({
      ...idp.verifierOptions(),
      jwks: { cooldown: 0, negativeCacheTtl: 30 },
    });
    cleanups.push(() => verifier.close());
    await verifier.warmUp();
    idp.resetRequests();
    const attacker = await makeKey('RS256', 'ghost');
    const token = await sign(attacker, { iss: idp.issuer });
    await rejectsWith(verifier.verify(token), 'key_not_found', 401);
    expect(idp.requests.jwks).toBe(1);
    for (let i = 0; i < 5; i++) await rejectsWith(verifier.verify(token), 'key_not_found', 401);
    expect(idp.requests.jwks).toBe(1);
    // The negative cache holds kids, not a blanket ban: a newly published key is still fetched.
    await idp.rotate();
    await expect(verifier.verify(await idp.mint())).resolves.toBeDefined();
    expect(idp.requests.jwks).toBe(2);
  });
});

describe('outages of the key source', () => {
  it('a JWKS that is down during a cold start answers 503 jwks_unavailable, then recovers', async () => {
    const idp = await issuer();
    idp.fail('down');
    const verifier = createVerifier({ ...idp.verifierOptions(), jwks: { cooldown: 0.2 } });
    cleanups.push(() => verifier.close());
    const token = await idp.mint();
    await rejectsWith(verifier.verify(token), 'jwks_unavailable', 503);
    // Within the cooldown the verifier fails fast instead of queueing on a dead endpoint.
    const fetches = idp.requests.jwks;
    await rejectsWith(verifier.verify(token), 'jwks_unavailable', 503);
    expect(idp.requests.jwks).toBe(fetches);
    idp.recover();
    await sleep(250);
    await expect(verifier.verify(token)).resolves.toBeDefined();
  });

  it('over HTTP, a cold-start outage is a 503 with Retry-After, never a 401 or a 500', async () => {
    const idp = await issuer();
    idp.fail('error', { status: 500 });
    const auth = authenticate(idp.verifierOptions());
    cleanups.push(() => auth.verifier.close());
    const app = express();
    app.get('/', auth, (_req, res) => {
      res.send('ok');
    });
    const server = await listen(app);
    cleanups.push(() => server.close());
    const tokens = await Promise.all(Array.from({ length: 20 }, () => idp.mint()));
    const responses = await Promise.all(
      tokens.map((t) => fetch(server.url, { headers: { authorization: `Bearer ${t}` } })),
    );
    for (const r of responses) {
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await r.json()).toEqual({
        error: 'jwks_unavailable',
        message: 'The signing keys of the issuer are unavailable.',
      });
    }
  });

  it('keeps verifying with cached keys while the endpoint is down (stale-if-error), for a bounded time', async () => {
    const idp = await issuer();
    const verifier = createVerifier({
      ...idp.verifierOptions(),
      cache: false,
      jwks: { cacheTtl: 1, staleIfError: 1.5, cooldown: 0.1 },
    });
    cleanups.push(() => verifier.close());
    await verifier.warmUp();
    idp.fail('down', { target: 'all' });
    await sleep(1200);
    await expect(verifier.verify(await idp.mint())).resolves.toBeDefined();
    await sleep(200);
    await expect(verifier.verify(await idp.mint())).resolves.toBeDefined();
    expect(verifier.health()).toMatchObject({
      ready: true,
      status: 'degraded',
      issuers: [{ status: 'stale' }],
    });
    // An unknown kid during the outage is an outage, not a bad token.
    const attacker = await makeKey('RS256');
    await rejectsWith(verifier.verify(await sign(attacker, { iss: idp.issuer })), 'jwks_unavailable', 503);
    // Past cacheTtl + staleIfError the keys are no longer used.
    await sleep(1400);
    await rejectsWith(verifier.verify(await idp.mint()), 'jwks_unavailable', 503);
    expect(verifier.health()).toMatchObject({ ready: false, status: 'down' });
    idp.recover();
    await sleep(150);
    await expect(verifier.verify(await idp.mint())).resolves.toBeDefined();
    expect(verifier.health()).toMatchObject({ ready: true, status: 'ok' });
  });

  it('keeps the previous keys when the endpoint starts answering garbage', async () => {
    const idp = await issuer();
    const verifier = createVerifier({
      ...idp.verifierOptions(),
      cache: false,
      jwks: { cacheTtl: 1, cooldown: 0.1 },
    });
    cleanups.push(() => verifier.close());
    await verifier.warmUp();
    idp.fail('garbage');
    await sleep(1100);
    await expect(verifier.verify(await idp.mint())).resolves.toBeDefined();
    await sleep(200);
    await expect(verifier.verify(await idp.mint())).resolves.toBeDefined();
    expect(verifier.health().issuers[0]).toMatchObject({
      status: 'stale',
      lastError: { reason: 'response is not valid JSON' },
    });
  });
});

describe('issuer allow-list', () => {
  it("an attacker's iss never causes a request, to the attacker or to the real issuer", async () => {
    const idp = await issuer();
    const evil = await createTestIssuer({ audience: AUDIENCE });
    cleanups.push(() => evil.close());
    const verifier = createVerifier(idp.verifierOptions());
    cleanups.push(() => verifier.close());
    for (const token of [
      await evil.mint(),
      await evil.mint({}, { header: { jku: evil.jwksUri } }),
      await evil.mint({ iss: `${idp.issuer}/` }),
      await evil.mint({ iss: idp.issuer.toUpperCase() }),
    ]) {
      await rejectsWith(verifier.verify(token), 'issuer_mismatch', 401);
    }
    expect(evil.requests).toEqual({ discovery: 0, jwks: 0, token: 0 });
    expect(idp.requests).toEqual({ discovery: 0, jwks: 0, token: 0 });
  });

  it('checks alg against the allow-list before fetching anything', async () => {
    const jwks = await jwksServer({ keys: [] });
    cleanups.push(() => jwks.close());
    const verifier = createVerifier({
      issuer: 'https://i.test/',
      audience: AUDIENCE,
      jwksUri: jwks.jwksUri,
      algorithms: ['ES256'],
    });
    const rsa = await makeKey('RS256');
    await rejectsWith(
      verifier.verify(await sign(rsa, { iss: 'https://i.test/' })),
      'algorithm_not_allowed',
      401,
    );
    expect(jwks.hits).toBe(0);
  });
});
