import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { isOidcError } from '../src/errors.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, jwksServer, makeKey, rejectsWith, sign, type TestKey } from './helpers.js';

let idp: TestIssuer;
let rsa: TestKey;
let ec: TestKey;
let ed: TestKey;

beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
  rsa = await makeKey('RS256');
  ec = await makeKey('ES256');
  ed = await makeKey('EdDSA');
});
afterAll(() => idp.close());

describe('verification through OIDC discovery', () => {
  it('verifies a token and returns a typed, frozen principal', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    const token = await idp.mint({ sub: 'alice', scope: 'tools:run tools:read', client_id: 'agent-7' });
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({
      subject: 'alice',
      issuer: idp.issuer,
      audience: [AUDIENCE],
      scopes: ['tools:run', 'tools:read'],
      clientId: 'agent-7',
      header: { alg: 'RS256', kid: idp.kid, typ: 'at+jwt' },
    });
    expect(principal.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect(Object.isFrozen(principal)).toBe(true);
    expect(Object.isFrozen(principal.claims)).toBe(true);
    expect(Object.isFrozen(principal.scopes)).toBe(true);
    expect(() => {
      (principal.claims as Record<string, unknown>).sub = 'mallory';
    }).toThrow(TypeError);
    await verifier.close();
  });

  it('fetches discovery and JWKS once for many tokens', async () => {
    idp.resetRequests();
    const verifier = createVerifier(idp.verifierOptions());
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => idp.mint({ sub: `u${i}` })));
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    expect(idp.requests).toMatchObject({ discovery: 1, jwks: 1 });
    await verifier.close();
  });

  it('reads scopes from scp (list or string) as well as scope', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    const a = await verifier.verify(await idp.mint({ scope: undefined, scp: ['a', 'b', 'a'] }));
    const b = await verifier.verify(await idp.mint({ scope: 'c', scp: 'd e' }));
    expect(a.scopes).toEqual(['a', 'b']);
    expect(b.scopes).toEqual(['c', 'd', 'e']);
    await verifier.close();
  });

  it('uses azp as the client id when client_id is absent', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    const p = await verifier.verify(await idp.mint({ client_id: undefined, azp: 'spa' }));
    expect(p.clientId).toBe('spa');
    await verifier.close();
  });
});

describe('key sources', () => {
  it('verifies with a configured jwksUri without discovery', async () => {
    const jwks = await jwksServer({ keys: [rsa.publicJwk, ec.publicJwk] });
    const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.jwksUri });
    expect((await verifier.verify(await sign(rsa))).header.alg).toBe('RS256');
    expect((await verifier.verify(await sign(ec))).header.alg).toBe('ES256');
    expect(jwks.hits).toBe(1);
    await verifier.close();
    await jwks.close();
  });

  it('verifies with static keys and fetches nothing', async () => {
    const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [ed.publicJwk] });
    expect((await verifier.verify(await sign(ed))).subject).toBe('user-1');
    expect(verifier.health()).toMatchObject({ ready: true, issuers: [{ source: 'static', keys: 1 }] });
  });

  it('verifies HS256 only with an explicit secret', async () => {
    const secret = 'a-test-secret-of-at-least-32-bytes!!';
    const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, secret });
    const { SignJWT } = await import('jose');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 's', exp: now + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
    expect((await verifier.verify(token)).subject).toBe('s');
    const wrong = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 's', exp: now + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(`${secret}x`));
    await rejectsWith(verifier.verify(wrong), 'signature_invalid', 401);
    await rejectsWith(verifier.verify(await sign(rsa)), 'algorithm_not_allowed', 401);
  });

  it('accepts several issuers, each with its own keys and audience', async () => {
    const other = await createTestIssuer({ audience: 'https://other.api', path: '/tenant-b' });
    const verifier = createVerifier({
      issuer: [idp.issuer, { issuer: other.issuer, audience: 'https://other.api' }],
      audience: AUDIENCE,
    });
    expect((await verifier.verify(await idp.mint())).issuer).toBe(idp.issuer);
    expect((await verifier.verify(await other.mint())).issuer).toBe(other.issuer);
    // A token of one tenant signed with the other tenant's key is refused.
    const forged = await other.mint({ iss: idp.issuer, aud: AUDIENCE });
    await rejectsWith(verifier.verify(forged), 'key_not_found', 401);
    await verifier.close();
    await other.close();
  });

  it('resolves tenants with a resolver, and never calls it twice for the same issuer', async () => {
    const tenant = await createTestIssuer({ audience: AUDIENCE, path: '/t/acme' });
    const asked: string[] = [];
    const verifier = createVerifier({
      issuer: async (iss) => {
        asked.push(iss);
        return iss === tenant.issuer;
      },
      audience: AUDIENCE,
    });
    const tokens = await Promise.all([tenant.mint(), tenant.mint(), tenant.mint()]);
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    await verifier.verify(await tenant.mint());
    expect(asked).toEqual([tenant.issuer]);
    await rejectsWith(verifier.verify(await idp.mint()), 'issuer_mismatch', 401);
    expect(verifier.health().issuers.map((i) => i.issuer)).toEqual([tenant.issuer]);
    await verifier.close();
    await tenant.close();
  });

  it('answers 503 when the resolver fails, and never treats that as a valid issuer', async () => {
    const verifier = createVerifier({
      issuer: () => {
        throw new Error('tenant database down');
      },
      audience: AUDIENCE,
    });
    await rejectsWith(verifier.verify(await idp.mint()), 'discovery_failed', 503);
  });

  it('answers 503 when the resolver returns invalid options', async () => {
    const verifier = createVerifier({
      issuer: () => ({ issuer: 'https://someone-else.test/' }),
      audience: AUDIENCE,
    });
    await rejectsWith(verifier.verify(await idp.mint()), 'discovery_failed', 503);
  });
});

describe('claims', () => {
  it('requires exp by default, and not when requireExp is false', async () => {
    const strict = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [rsa.publicJwk] });
    const lax = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [rsa.publicJwk],
      requireExp: false,
    });
    const token = await sign(rsa, { exp: undefined });
    await rejectsWith(strict.verify(token), 'claim_invalid', 401);
    expect((await lax.verify(token)).expiresAt).toBeUndefined();
  });

  it('applies clockTolerance to exp and nbf', async () => {
    const now = Math.floor(Date.now() / 1000);
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [rsa.publicJwk],
      clockTolerance: 30,
    });
    await expect(verifier.verify(await sign(rsa, { exp: now - 10 }))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(rsa, { nbf: now + 10 }))).resolves.toBeDefined();
    await rejectsWith(verifier.verify(await sign(rsa, { exp: now - 60 })), 'token_expired', 401);
    await rejectsWith(verifier.verify(await sign(rsa, { nbf: now + 60 })), 'token_not_yet_valid', 401);
  });

  it('rejects tokens older than maxTokenAge', async () => {
    const now = Math.floor(Date.now() / 1000);
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [rsa.publicJwk],
      maxTokenAge: 60,
    });
    await expect(verifier.verify(await sign(rsa, { iat: now - 30 }))).resolves.toBeDefined();
    await rejectsWith(verifier.verify(await sign(rsa, { iat: now - 120 })), 'token_expired', 401);
    await rejectsWith(verifier.verify(await sign(rsa, { iat: undefined })), 'claim_invalid', 401);
  });

  it('requires the requiredClaims and names the claim', async () => {
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [rsa.publicJwk],
      requiredClaims: ['tenant'],
    });
    await expect(verifier.verify(await sign(rsa, { tenant: 'acme' }))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(rsa))).rejects.toMatchObject({
      code: 'claim_invalid',
      message: 'The "tenant" claim is missing or invalid.',
    });
  });

  it('accepts any of several audiences, and rejects others', async () => {
    const verifier = createVerifier({ issuer: ISSUER, audience: ['a', 'b'], keys: [rsa.publicJwk] });
    await expect(verifier.verify(await sign(rsa, { aud: ['x', 'b'] }))).resolves.toBeDefined();
    await rejectsWith(verifier.verify(await sign(rsa, { aud: 'c' })), 'audience_mismatch', 401);
    await rejectsWith(verifier.verify(await sign(rsa, { aud: undefined })), 'audience_mismatch', 401);
  });

  it('runs claim validators, and a validator that throws rejects the token', async () => {
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [rsa.publicJwk],
      claimValidators: {
        tenant: (v) => v === 'acme',
        org: () => {
          throw new Error('boom');
        },
      },
    });
    await rejectsWith(verifier.verify(await sign(rsa, { tenant: 'evil' })), 'claim_invalid', 401);
    await expect(verifier.verify(await sign(rsa, { tenant: 'acme' }))).rejects.toMatchObject({
      code: 'claim_invalid',
      message: 'The "org" claim is missing or invalid.',
    });
  });

  it('validates and types claims with a zod schema', async () => {
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [rsa.publicJwk],
      claimsSchema: z.object({
        sub: z.string(),
        tenant: z.enum(['acme', 'globex']),
        level: z.coerce.number(),
      }),
    });
    const p = await verifier.verify(await sign(rsa, { tenant: 'acme', level: '3' }));
    expect(p.claims).toEqual({ sub: 'user-1', tenant: 'acme', level: 3 });
    const err = await verifier
      .verify(await sign(rsa, { tenant: 'initech', level: 1 }))
      .catch((e: unknown) => e);
    expect(isOidcError(err) && err.code).toBe('claim_invalid');
    expect(JSON.stringify(err)).not.toContain('initech');
  });

  it('rejects registered claims of the wrong type', async () => {
    const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [rsa.publicJwk] });
    await rejectsWith(verifier.verify(await sign(rsa, { sub: 42 })), 'claim_invalid', 401);
    await rejectsWith(verifier.verify(await sign(rsa, { scope: ['a'] })), 'claim_invalid', 401);
    await rejectsWith(verifier.verify(await sign(rsa, { nbf: 'soon' })), 'claim_invalid', 401);
  });

  it('in RFC 9068 mode requires typ at+jwt and the profile claims', async () => {
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [rsa.publicJwk],
      profile: 'rfc9068',
    });
    const full = { client_id: 'c', jti: 'j' };
    await expect(verifier.verify(await sign(rsa, full))).resolves.toBeDefined();
    await expect(
      verifier.verify(await sign(rsa, full, { typ: 'application/at+jwt' })),
    ).resolves.toBeDefined();
    await rejectsWith(verifier.verify(await sign(rsa, full, { typ: 'JWT' })), 'token_type_invalid', 401);
    await rejectsWith(verifier.verify(await sign(rsa, { jti: 'j' })), 'claim_invalid', 401);
  });
});

describe('readiness and lifecycle', () => {
  it('reports starting before warm-up, ok after, and warmUp fetches ahead of traffic', async () => {
    idp.resetRequests();
    const verifier = createVerifier(idp.verifierOptions());
    expect(verifier.health()).toMatchObject({
      ready: false,
      status: 'starting',
      issuers: [{ status: 'cold' }],
    });
    const health = await verifier.warmUp();
    expect(health).toMatchObject({ ready: true, status: 'ok', issuers: [{ status: 'ok', keys: 1 }] });
    expect(idp.requests).toMatchObject({ discovery: 1, jwks: 1 });
    await verifier.verify(await idp.mint());
    expect(idp.requests.jwks).toBe(1);
    await verifier.close();
  });

  it('rejects warmUp with a 503 code when the issuer is unreachable', async () => {
    const broken = await createTestIssuer();
    broken.fail('error', { status: 500, target: 'all' });
    const verifier = createVerifier(broken.verifierOptions());
    await rejectsWith(verifier.warmUp(), 'discovery_failed', 503);
    expect(verifier.health()).toMatchObject({ ready: false, status: 'down', issuers: [{ status: 'down' }] });
    broken.fail('error', { status: 500, target: 'jwks' });
    await rejectsWith(verifier.warmUp(), 'jwks_unavailable', 503);
    expect(verifier.health()).toMatchObject({
      ready: false,
      status: 'down',
      issuers: [{ status: 'down', lastError: { reason: 'HTTP 500' } }],
    });
    await verifier.close();
    await broken.close();
  });

  it('answers 503 after close', async () => {
    const verifier = createVerifier(idp.verifierOptions());
    const token = await idp.mint();
    await verifier.verify(token);
    await verifier.close();
    await rejectsWith(verifier.verify(token), 'jwks_unavailable', 503);
    expect(verifier.health().status).toBe('down');
  });
});
