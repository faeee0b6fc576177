import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { isOidcError } from '../src/errors.js';
import type { Verifier } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, makeKey, rejectsWith, sign, type TestKey } from './helpers.js';

let key: TestKey;
let token: string;
let other: string;
let plain: Verifier;
let everywhere: Verifier;

beforeAll(async () => {
  key = await makeKey('ES256');
  token = await sign(key);
  other = await sign(key, { sub: 'user-2' });
  const base = { issuer: ISSUER, audience: AUDIENCE, keys: [key.publicJwk] };
  plain = createVerifier(base);
  everywhere = createVerifier({
    ...base,
    tokenSources: {
      cookie: 'at',
      query: true,
      custom: (req) => {
        const v = req.headers['x-agent-token'];
        return typeof v === 'string' ? v : undefined;
      },
    },
  });
});

describe('Authorization header', () => {
  it.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('accepts the scheme spelled %s', async (scheme) => {
    const p = await plain.verifyRequest({ headers: { authorization: `${scheme} ${token}` } });
    expect(p.subject).toBe('user-1');
  });

  it('tolerates extra spaces around the token', async () => {
    await expect(
      plain.verifyRequest({ headers: { authorization: `Bearer   ${token}  ` } }),
    ).resolves.toBeDefined();
  });

  it('finds the header whatever its case in a plain object', async () => {
    await expect(
      plain.verifyRequest({ headers: { Authorization: `Bearer ${token}` } }),
    ).resolves.toBeDefined();
  });

  it('answers 401 token_missing with a bare challenge when there is no token', async () => {
    const err = await plain.verifyRequest({ headers: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'token_missing',
      status: 401,
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  });

  it('treats another scheme (Basic, Digest) as no bearer token', async () => {
    await rejectsWith(
      plain.verifyRequest({ headers: { authorization: 'Basic dXNlcjpwYXNz' } }),
      'token_missing',
      401,
    );
    await rejectsWith(
      plain.verifyRequest({ headers: { authorization: 'Digest username="a", realm="b", nonce="c"' } }),
      'token_missing',
    );
  });

  it('answers 400 invalid_request for "Bearer" without a token', async () => {
    await rejectsWith(plain.verifyRequest({ headers: { authorization: 'Bearer' } }), 'invalid_request', 400);
    await rejectsWith(
      plain.verifyRequest({ headers: { authorization: 'Bearer    ' } }),
      'invalid_request',
      400,
    );
  });

  it('answers 401 token_malformed for characters outside b64token', async () => {
    await rejectsWith(
      plain.verifyRequest({ headers: { authorization: `Bearer ${token} ${other}` } }),
      'token_malformed',
    );
    await rejectsWith(plain.verifyRequest({ headers: { authorization: 'Bearer a,b' } }), 'token_malformed');
  });

  it('answers 400 when the request carries two Authorization headers', async () => {
    const req = { headers: { authorization: [`Bearer ${token}`, `Bearer ${other}`] } };
    await rejectsWith(plain.verifyRequest(req), 'invalid_request', 400);
  });

  it('resolves to undefined in optional mode without a token, and still refuses a bad one', async () => {
    await expect(plain.verifyRequest({ headers: {} }, { optional: true })).resolves.toBeUndefined();
    await rejectsWith(
      plain.verifyRequest({ headers: { authorization: 'Bearer x.y.z' } }, { optional: true }),
      'token_malformed',
    );
  });

  it('refuses a request-like value without headers', async () => {
    await rejectsWith(plain.verifyRequest(null as never), 'invalid_request', 400);
  });
});

describe('other token sources', () => {
  it('ignores query-string tokens unless enabled', async () => {
    await rejectsWith(
      plain.verifyRequest({ headers: {}, url: `/x?access_token=${token}` }),
      'token_missing',
      401,
    );
    await expect(
      everywhere.verifyRequest({ headers: {}, url: `/x?access_token=${token}` }),
    ).resolves.toBeDefined();
  });

  it('reads a named query parameter', async () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [key.publicJwk],
      tokenSources: { query: 'jwt' },
    });
    await expect(v.verifyRequest({ headers: {}, url: `/x?jwt=${token}` })).resolves.toBeDefined();
  });

  it('reads a cookie from the Cookie header or from parsed cookies', async () => {
    await expect(
      everywhere.verifyRequest({ headers: { cookie: `theme=dark; at=${token}` } }),
    ).resolves.toBeDefined();
    await expect(everywhere.verifyRequest({ headers: {}, cookies: { at: token } })).resolves.toBeDefined();
  });

  it('uses a custom extractor', async () => {
    await expect(everywhere.verifyRequest({ headers: { 'x-agent-token': token } })).resolves.toBeDefined();
  });

  it('answers 400 when a custom extractor throws', async () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [key.publicJwk],
      tokenSources: {
        custom: () => {
          throw new Error('bad');
        },
      },
    });
    await rejectsWith(v.verifyRequest({ headers: {} }), 'invalid_request', 400);
  });
});

describe('a token in two places is 400 invalid_request', () => {
  it.each([
    ['header and query', { headers: { authorization: `Bearer ${'T'}` }, url: '/x?access_token=T' }],
    ['header and cookie', { headers: { authorization: 'Bearer T', cookie: 'at=T' } }],
    ['cookie and query', { headers: { cookie: 'at=T' }, url: '/x?access_token=T' }],
    ['header and custom', { headers: { authorization: 'Bearer T', 'x-agent-token': 'T' } }],
    ['query twice', { headers: {}, url: '/x?access_token=T&access_token=U' }],
    ['cookie twice', { headers: { cookie: 'at=T; at=U' } }],
  ])('%s', async (_name, req) => {
    const real = JSON.parse(JSON.stringify(req).replaceAll('T', token).replaceAll('U', other)) as {
      headers: Record<string, string>;
      url?: string;
    };
    const err = await everywhere.verifyRequest(real).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invalid_request', status: 400 });
    expect((err as { headers: Record<string, string> }).headers['WWW-Authenticate']).toBe(
      `Bearer error="invalid_request", error_description="${(err as Error).message}"`,
    );
  });

  it('ignores a query token when query tokens are off, so header + query is not ambiguous', async () => {
    await expect(
      plain.verifyRequest({ headers: { authorization: `Bearer ${token}` }, url: `/x?access_token=${other}` }),
    ).resolves.toMatchObject({
      subject: 'user-1',
    });
  });
});

describe('request-like objects of any shape', () => {
  it('answers 400 for header values of the wrong type', async () => {
    for (const authorization of [42, { toString: () => `Bearer ${token}` }, [7], ['a', 'b', 'c'], null]) {
      const err = await plain.verifyRequest({ headers: { authorization } } as never).catch((e: unknown) => e);
      expect(err, String(authorization)).toMatchObject({ status: 400, code: 'invalid_request' });
    }
    await rejectsWith(everywhere.verifyRequest({ headers: { cookie: 5 } } as never), 'invalid_request', 400);
  });

  it('answers 400 when reading the request throws', async () => {
    const headers = Object.defineProperty({}, 'authorization', {
      get() {
        throw new Error('boom');
      },
      enumerable: true,
    });
    await rejectsWith(plain.verifyRequest({ headers }), 'invalid_request', 400);
  });

  it('refuses a cookie sent twice even when a cookie parser kept one of them', async () => {
    await rejectsWith(
      everywhere.verifyRequest({ headers: { cookie: `at=${token}; at=${token}` }, cookies: { at: token } }),
      'invalid_request',
      400,
    );
  });

  it('never fails with anything but a typed 400 or 401 (property over arbitrary requests)', async () => {
    const value = fc.oneof(
      fc.string(),
      fc.constantFrom(`Bearer ${'x'}`, 'Bearer', 'bearer  a.b.c', 'Basic x', `at=${'y'}`),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.integer(),
      fc.constant(undefined),
      fc.constant(null),
      fc.object({ maxDepth: 1 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          headers: fc.dictionary(
            fc.constantFrom('authorization', 'Authorization', 'cookie', 'x-agent-token', 'host'),
            value,
          ),
          url: fc.option(
            fc.oneof(
              fc.webPath(),
              fc.string().map((q) => `/x?access_token=${q}`),
            ),
            { nil: undefined },
          ),
          cookies: fc.option(fc.dictionary(fc.constantFrom('at', 'other'), value), { nil: undefined }),
        }),
        async (req) => {
          const err = await everywhere.verifyRequest(req as never).then(
            () => undefined,
            (e: unknown) => e,
          );
          if (err === undefined) return;
          expect(isOidcError(err), String(err)).toBe(true);
          expect([400, 401]).toContain((err as { status: number }).status);
        },
      ),
      { numRuns: 300 },
    );
  });
});
