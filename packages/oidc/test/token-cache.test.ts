import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, makeKey, rejectsWith, sign, sleep, type TestKey } from './helpers.js';
import { recordSpans } from './spans.js';

// Whether an answer came from the verified-token cache is visible in the `amas.oidc.cache`
// attribute of the `amas.oidc.verify` span, so these tests observe the cache through public output.
const recorder = recordSpans();
let key: TestKey;
let idp: TestIssuer;

beforeAll(async () => {
  key = await makeKey('ES256');
  idp = await createTestIssuer({ audience: AUDIENCE });
});
afterAll(() => idp.close());
beforeEach(() => recorder.exporter.reset());

const cacheOutcomes = () => recorder.spans('amas.oidc.verify').map((s) => s.attributes['amas.oidc.cache']);
const staticVerifier = (extra: object = {}) =>
  createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [key.publicJwk], ...extra });

describe('verified-token cache', () => {
  it('answers a repeated token from the cache with the same frozen principal', async () => {
    const verifier = staticVerifier();
    const token = await sign(key);
    const first = await verifier.verify(token);
    const second = await verifier.verify(token);
    expect(second).toBe(first);
    expect(Object.isFrozen(second.claims)).toBe(true);
    expect(cacheOutcomes()).toEqual(['miss', 'hit']);
  });

  it('can be switched off', async () => {
    const verifier = staticVerifier({ cache: false });
    const token = await sign(key);
    await verifier.verify(token);
    await verifier.verify(token);
    expect(cacheOutcomes()).toEqual(['off', 'off']);
  });

  it('is keyed by the exact token: a one-character change is verified, and refused', async () => {
    const verifier = staticVerifier();
    const token = await sign(key);
    await verifier.verify(token);
    const i = token.length - 10;
    const changed = `${token.slice(0, i)}${token[i] === 'A' ? 'B' : 'A'}${token.slice(i + 1)}`;
    await rejectsWith(verifier.verify(changed), 'signature_invalid');
    expect(cacheOutcomes()).toEqual(['miss', 'miss']);
  });

  it('never lets a tampered token borrow the cache entry of the genuine token it copies the signature of', async () => {
    const verifier = staticVerifier();
    const genuine = await sign(key, { sub: 'alice', scope: 'tools:read' });
    await verifier.verify(genuine);
    const [header, , signature] = genuine.split('.');
    const payload = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(genuine.split('.')[1] as string, 'base64url').toString()),
        scope: 'root',
      }),
    ).toString('base64url');
    await rejectsWith(verifier.verify(`${header}.${payload}.${signature}`), 'signature_invalid');
    expect((await verifier.verify(genuine)).scopes).toEqual(['tools:read']);
    expect(cacheOutcomes()).toEqual(['miss', 'miss', 'hit']);
  });

  it('never caches failures', async () => {
    const verifier = staticVerifier();
    const token = await sign(key, { aud: 'elsewhere' });
    await rejectsWith(verifier.verify(token), 'audience_mismatch');
    await rejectsWith(verifier.verify(token), 'audience_mismatch');
    expect(cacheOutcomes()).toEqual(['miss', 'miss']);
  });

  it('is bounded: the least recently used entry is evicted at maxEntries', async () => {
    const verifier = staticVerifier({ cache: { maxEntries: 2 } });
    const [a, b, c] = await Promise.all([
      sign(key, { sub: 'a' }),
      sign(key, { sub: 'b' }),
      sign(key, { sub: 'c' }),
    ]);
    await verifier.verify(a as string);
    await verifier.verify(b as string);
    await verifier.verify(a as string); // a is now the most recently used
    await verifier.verify(c as string); // evicts b
    await verifier.verify(a as string);
    await verifier.verify(b as string);
    expect(cacheOutcomes()).toEqual(['miss', 'miss', 'hit', 'miss', 'hit', 'miss']);
  });

  it('never serves a token past its exp', async () => {
    const verifier = staticVerifier({ clockTolerance: 0 });
    const token = await sign(key, { exp: Math.floor(Date.now() / 1000) + 1 });
    await verifier.verify(token);
    await verifier.verify(token);
    await sleep(2100);
    await rejectsWith(verifier.verify(token), 'token_expired', 401);
    expect(cacheOutcomes().slice(0, 2)).toEqual(['miss', 'hit']);
  });

  it('re-checks time claims on every hit (maxTokenAge)', async () => {
    const verifier = staticVerifier({ clockTolerance: 0, maxTokenAge: 60 });
    const token = await sign(key, { iat: Math.floor(Date.now() / 1000) - 59 });
    await verifier.verify(token);
    await sleep(2100);
    await rejectsWith(verifier.verify(token), 'token_expired', 401);
    const spans = recorder.spans('amas.oidc.verify');
    expect(spans[1]?.attributes).toMatchObject({
      'amas.oidc.cache': 'hit',
      'amas.oidc.outcome': 'token_expired',
    });
  });

  it('drops a token when its signing key leaves the JWKS', async () => {
    const verifier = createVerifier({ ...idp.verifierOptions(), jwks: { cooldown: 0 } });
    const old = await idp.mint();
    await verifier.verify(old);
    await verifier.verify(old);
    await idp.rotate({ removeOld: true });
    await verifier.verify(await idp.mint()); // unknown kid: the JWKS is fetched again, without the old key
    await rejectsWith(verifier.verify(old), 'key_not_found', 401);
    expect(cacheOutcomes()).toEqual(['miss', 'hit', 'miss', 'miss']);
    await verifier.close();
  });

  it('keeps the JWKS fresh on cache hits alone, so a removed key stops verifying its cached tokens', async () => {
    const verifier = createVerifier({ ...idp.verifierOptions(), jwks: { cacheTtl: 1, cooldown: 0.1 } });
    const token = await idp.mint();
    await verifier.verify(token);
    const oldKid = idp.kid;
    await idp.rotate();
    idp.removeKey(oldKid);
    idp.resetRequests();
    let code = '';
    const started = Date.now();
    while (code === '' && Date.now() - started < 5000) {
      await sleep(100);
      code = await verifier.verify(token).then(
        () => '',
        (e: { code: string }) => e.code,
      );
    }
    expect(code).toBe('key_not_found');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(idp.requests.jwks).toBeGreaterThanOrEqual(1);
    await verifier.close();
  });

  it('answers a cached token while the key source is stale, and stops after the stale window', async () => {
    const verifier = createVerifier({
      ...idp.verifierOptions(),
      jwks: { cacheTtl: 1, staleIfError: 1, cooldown: 0.1 },
    });
    const token = await idp.mint();
    await verifier.verify(token);
    idp.fail('down', { target: 'all' });
    await sleep(1200);
    await verifier.verify(token);
    await sleep(1000);
    await rejectsWith(verifier.verify(token), 'jwks_unavailable', 503);
    idp.recover();
    expect(cacheOutcomes()).toEqual(['miss', 'hit', 'miss']);
    await verifier.close();
  });
});
