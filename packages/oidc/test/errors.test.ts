import express from 'express';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authError, bearerChallenge } from '../src/challenge.js';
import { type OidcErrorCode, OidcErrorStatus } from '../src/errors.js';
import { authenticate, requireScopes } from '../src/express.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, type Listening, listen, makeKey, sign, type TestKey } from './helpers.js';

let key: TestKey;
let server: Listening;

beforeAll(async () => {
  key = await makeKey('ES256');
  const verifier = createVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    keys: [key.publicJwk],
    realm: 'agents',
  });
  const app = express();
  app.get(
    '/',
    authenticate(verifier),
    requireScopes(['tools:run', 'tools:admin'], { realm: 'agents' }),
    (_req, res) => {
      res.send('ok');
    },
  );
  server = await listen(app);
});
afterAll(() => server.close());

const get = (authorization?: string) =>
  fetch(server.url, { headers: authorization === undefined ? {} : { authorization } });

describe('RFC 6750 responses', () => {
  it('maps every code to its documented status', () => {
    expect(OidcErrorStatus).toEqual({
      token_missing: 401,
      token_malformed: 401,
      token_expired: 401,
      token_not_yet_valid: 401,
      signature_invalid: 401,
      issuer_mismatch: 401,
      audience_mismatch: 401,
      algorithm_not_allowed: 401,
      key_not_found: 401,
      token_type_invalid: 401,
      token_sender_constrained: 401,
      claim_invalid: 401,
      insufficient_scope: 403,
      invalid_request: 400,
      jwks_unavailable: 503,
      discovery_failed: 503,
      config_invalid: 500,
    });
  });

  it('a missing token: 401 with a bare challenge (no error code, section 3.1)', async () => {
    const res = await get();
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="agents"');
    expect(await res.json()).toEqual({ error: 'token_missing', message: 'No bearer token was presented.' });
  });

  it('an invalid token: 401 invalid_token with a description', async () => {
    const res = await get(`Bearer ${await sign(key, { exp: 1 })}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="agents", error="invalid_token", error_description="The token has expired."',
    );
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ error: 'token_expired', message: 'The token has expired.' });
  });

  it('a malformed request: 400 invalid_request', async () => {
    const res = await get('Bearer');
    expect(res.status).toBe(400);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="agents", error="invalid_request"/);
  });

  it('a missing scope: 403 insufficient_scope with the scopes required', async () => {
    const res = await get(`Bearer ${await sign(key, { scope: 'tools:read' })}`);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="agents", error="insufficient_scope", error_description="The token does not grant the scope this request needs.", scope="tools:run tools:admin"',
    );
    expect((await res.json()) as { error: string }).toMatchObject({ error: 'insufficient_scope' });
  });

  it('an outage: 503 with Retry-After and no challenge', () => {
    const err = authError('jwks_unavailable', 'The signing keys of the issuer are unavailable.', {
      retryAfter: 2,
    });
    expect(err.status).toBe(503);
    expect(err.headers).toEqual({ 'Cache-Control': 'no-store', 'Retry-After': '2' });
  });

  it('keeps quoted-string values legal even for hostile realm and scope names', () => {
    const header = bearerChallenge('insufficient_scope', 'desc "quoted" \\ \r\n', {
      realm: 'a"b\\c\r\nX-Injected: 1',
      scope: ['ok', 'bad"scope', 'new\r\nline'],
    });
    expect(header).not.toMatch(/[\r\n]/);
    expect(header).toBe(
      'Bearer realm="abcX-Injected: 1", error="insufficient_scope", error_description="desc quoted  ", scope="ok badscope newline"',
    );
  });

  it('maps every code to the RFC 6750 error parameter', () => {
    const expected: Partial<Record<OidcErrorCode, string | undefined>> = {
      token_missing: undefined,
      invalid_request: 'invalid_request',
      insufficient_scope: 'insufficient_scope',
      token_expired: 'invalid_token',
      key_not_found: 'invalid_token',
      token_type_invalid: 'invalid_token',
      token_sender_constrained: 'invalid_token',
    };
    for (const [code, error] of Object.entries(expected)) {
      const value = bearerChallenge(code as OidcErrorCode, 'd');
      if (error === undefined) expect(value).toBe('Bearer');
      else expect(value).toContain(`error="${error}"`);
    }
  });
});

describe('error responses never echo the token', () => {
  it('for arbitrary garbage in the Authorization header (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9\-._~+/]{8,300}=*$/), async (garbage) => {
        const res = await get(`Bearer ${garbage}`);
        const body = await res.text();
        expect([400, 401]).toContain(res.status);
        expect(body).not.toContain(garbage);
        expect(res.headers.get('www-authenticate') ?? '').not.toContain(garbage);
        expect(body).not.toMatch(/at .*\.(ts|js):\d+/);
      }),
      { numRuns: 150 },
    );
  });

  it('for tokens that parse but fail verification (property over claims and headers)', async () => {
    const other = await makeKey('ES256');
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          sub: fc.string({ minLength: 8, maxLength: 40 }),
          iss: fc.oneof(fc.constant(ISSUER), fc.webUrl()),
          aud: fc.oneof(fc.constant(AUDIENCE), fc.string({ minLength: 1 })),
          exp: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.constant(undefined)),
          kid: fc.oneof(fc.constant(key.kid), fc.string({ minLength: 1, maxLength: 64 })),
          signer: fc.boolean(),
        }),
        async ({ sub, iss, aud, exp, kid, signer }) => {
          const token = await sign(signer ? key : other, { sub, iss, aud, exp }, { kid });
          const res = await get(`Bearer ${token}`);
          const text = `${await res.text()} ${res.headers.get('www-authenticate') ?? ''}`;
          expect(res.status).toBeLessThan(500);
          for (const part of token.split('.')) expect(text).not.toContain(part);
          expect(text).not.toContain(sub);
          expect(text).not.toContain(kid.length >= 8 ? kid : '\u0000never');
        },
      ),
      { numRuns: 60 },
    );
  });
});
