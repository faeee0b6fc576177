import Router from '@koa/router';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { OidcErrorStatus } from '../src/errors.js';
import { authenticate as expressAuthenticate } from '../src/express.js';
import { authenticate as koaAuthenticate } from '../src/koa.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import type { Verifier } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import {
  AUDIENCE,
  ISSUER,
  type Listening,
  listen,
  makeKey,
  rejectsWith,
  sign,
  signRaw,
  type TestKey,
} from './helpers.js';
import { recordSpans } from './spans.js';

// RFC 7800 `cnf` binds a token to a key its holder must prove (DPoP, RFC 9449; mTLS, RFC 8705). This
// library does not see that proof, so by default such a token must not work here as a bearer token.

const recorder = recordSpans();
const DESCRIPTION = 'The token is bound to a client key (cnf) and cannot be used as a bearer token here.';
const CHALLENGE = `Bearer error="invalid_token", error_description="${DESCRIPTION}"`;
const JKT = '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I';

let key: TestKey;
let idp: TestIssuer;
let rejecting: Verifier;
let allowing: Verifier;

beforeAll(async () => {
  key = await makeKey('ES256', 'k1');
  idp = await createTestIssuer({ audience: AUDIENCE });
  rejecting = createVerifier(idp.verifierOptions());
  allowing = createVerifier({ ...idp.verifierOptions(), senderConstrained: 'allow' });
});
afterAll(async () => {
  await rejecting.close();
  await allowing.close();
  await idp.close();
});
beforeEach(() => recorder.exporter.reset());

const staticVerifier = (extra: object = {}) =>
  createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [key.publicJwk], ...extra });
const verifySpans = () => recorder.spans('amas.oidc.verify');

describe('tokens with a cnf claim are refused by default', () => {
  it('has a stable code that maps to 401', () => {
    expect(OidcErrorStatus.token_sender_constrained).toBe(401);
  });

  it('refuses a DPoP-bound token (cnf.jkt) with 401 token_sender_constrained and an RFC 6750 challenge', async () => {
    const err = await rejecting.verify(await idp.mint({ cnf: { jkt: JKT } })).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'token_sender_constrained',
      status: 401,
      message: DESCRIPTION,
      headers: { 'WWW-Authenticate': CHALLENGE, 'Cache-Control': 'no-store' },
    });
  });

  it.each([
    [
      'an mTLS certificate thumbprint (x5t#S256)',
      { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' },
    ],
    ['an embedded key (jwk)', { jwk: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b' } }],
    ['a key id (kid)', { kid: 'client-key-1' }],
    ['an encrypted key (jwe)', { jwe: 'eyJhbGciOiJSU0EtT0FFUCJ9.x.y.z.w' }],
    ['a key set URL (jku)', { jku: 'https://client.example/jwks', kid: 'k' }],
    ['a method this library has never heard of', { 'x-future-binding': 'whatever' }],
    ['an empty object', {}],
    ['null', null],
    ['a string', 'bound'],
    ['a list', [{ jkt: JKT }]],
    ['false', false],
  ])('refuses a token whose cnf is %s', async (_name, cnf) => {
    const v = staticVerifier();
    await rejectsWith(v.verify(await sign(key, { cnf })), 'token_sender_constrained', 401);
  });

  it('refuses cnf written with a JSON escape in its name', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = `{"iss":${JSON.stringify(ISSUER)},"aud":${JSON.stringify(AUDIENCE)},"sub":"u","exp":${now + 600},"\\u0063nf":{"jkt":"${JKT}"}}`;
    const token = await signRaw(key, { kid: key.kid }, payload);
    await rejectsWith(staticVerifier().verify(token), 'token_sender_constrained', 401);
  });

  it('refuses it after a duplicate cnf member that JSON.parse keeps last', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = `{"cnf":null,"iss":${JSON.stringify(ISSUER)},"aud":${JSON.stringify(AUDIENCE)},"exp":${now + 600},"cnf":{"jkt":"${JKT}"}}`;
    const token = await signRaw(key, { kid: key.kid }, payload);
    await rejectsWith(staticVerifier().verify(token), 'token_sender_constrained', 401);
  });

  it('refuses it in every profile and with claim checks that would pass', async () => {
    const v = staticVerifier({
      profile: 'rfc9068',
      claimValidators: { tenant: (t: unknown) => t === 'acme' },
      claimsSchema: z.object({ sub: z.string() }),
    });
    const claims = { client_id: 'c', jti: 'j', tenant: 'acme' };
    expect((await v.verify(await sign(key, claims))).subject).toBe('user-1');
    await rejectsWith(
      v.verify(await sign(key, { ...claims, cnf: { jkt: JKT } })),
      'token_sender_constrained',
    );
  });

  it('still reports a bad token as what it is: a forged or expired bound token is not a binding problem', async () => {
    const v = staticVerifier();
    const other = await makeKey('ES256', key.kid);
    await rejectsWith(v.verify(await sign(other, { cnf: { jkt: JKT } })), 'signature_invalid');
    await rejectsWith(v.verify(await sign(key, { cnf: { jkt: JKT }, exp: 1 })), 'token_expired');
    await rejectsWith(v.verify(await sign(key, { cnf: { jkt: JKT }, aud: 'other' })), 'audience_mismatch');
  });

  it('never caches a refused token, and the span names the refusal', async () => {
    const v = staticVerifier();
    const token = await sign(key, { cnf: { jkt: JKT } });
    await rejectsWith(v.verify(token), 'token_sender_constrained');
    await rejectsWith(v.verify(token), 'token_sender_constrained');
    const spans = verifySpans();
    expect(spans.map((s) => s.attributes['amas.oidc.cache'])).toEqual(['miss', 'miss']);
    expect(spans.map((s) => s.attributes['amas.oidc.outcome'])).toEqual([
      'token_sender_constrained',
      'token_sender_constrained',
    ]);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain(JKT);
  });

  it('leaves tokens without cnf alone (a cnf-like claim of another name is not a binding)', async () => {
    const v = staticVerifier();
    const p = await v.verify(await sign(key, { cnf_hint: { jkt: JKT }, confirmation: 'x' }));
    expect(p.confirmation).toBeUndefined();
    expect('confirmation' in p).toBe(false);
  });
});

describe("senderConstrained: 'allow', for services that verify the binding themselves", () => {
  it('accepts the token and exposes cnf as principal.confirmation, frozen', async () => {
    const p = await allowing.verify(await idp.mint({ cnf: { jkt: JKT } }));
    expect(p.confirmation).toEqual({ jkt: JKT });
    expect(Object.isFrozen(p.confirmation)).toBe(true);
    expect(p.claims.cnf).toEqual({ jkt: JKT });
  });

  it('keeps principal.confirmation when a claims schema strips cnf from the claims', async () => {
    const v = staticVerifier({
      senderConstrained: 'allow',
      claimsSchema: z.object({ sub: z.string() }),
    });
    const p = await v.verify(await sign(key, { cnf: { 'x5t#S256': 'abc' } }));
    expect(p.claims).toEqual({ sub: 'user-1' });
    expect(p.confirmation).toEqual({ 'x5t#S256': 'abc' });
  });

  it.each([
    ['null', null],
    ['a string', 'bound'],
    ['a list', [{ jkt: JKT }]],
  ])('refuses a cnf that is %s with 401 claim_invalid', async (_name, cnf) => {
    await expect(
      staticVerifier({ senderConstrained: 'allow' }).verify(await sign(key, { cnf })),
    ).rejects.toMatchObject({
      code: 'claim_invalid',
      status: 401,
      message: 'The "cnf" claim is missing or invalid.',
    });
  });

  it('caches accepted bound tokens like any other', async () => {
    const v = staticVerifier({ senderConstrained: 'allow' });
    const token = await sign(key, { cnf: { jkt: JKT } });
    const first = await v.verify(token);
    expect(await v.verify(token)).toBe(first);
    expect(verifySpans().map((s) => s.attributes['amas.oidc.cache'])).toEqual(['miss', 'hit']);
  });

  it("'reject' is the default and can be said explicitly", async () => {
    const token = await sign(key, { cnf: { jkt: JKT } });
    await rejectsWith(
      staticVerifier({ senderConstrained: 'reject' }).verify(token),
      'token_sender_constrained',
    );
    expect((await staticVerifier({ senderConstrained: 'allow' }).verify(token)).subject).toBe('user-1');
  });
});

const frameworks = [
  [
    'Express 5',
    async (v: Verifier) => {
      const app = express5();
      app.get('/me', expressAuthenticate(v), (req, res) => {
        res.json({ subject: req.amas?.auth?.subject, cnf: req.amas?.auth?.confirmation ?? null });
      });
      return listen(app);
    },
  ],
  [
    'Express 4',
    async (v: Verifier) => {
      const app = express4();
      app.get('/me', expressAuthenticate(v), (req, res) => {
        res.json({ subject: req.amas?.auth?.subject, cnf: req.amas?.auth?.confirmation ?? null });
      });
      return listen(app);
    },
  ],
  [
    'Koa 3',
    async (v: Verifier) => {
      const app = new Koa3();
      const router = new Router();
      router.get('/me', koaAuthenticate(v), (ctx) => {
        ctx.body = {
          subject: ctx.state.amas?.auth?.subject,
          cnf: ctx.state.amas?.auth?.confirmation ?? null,
        };
      });
      app.use(router.routes());
      return listen(app.callback());
    },
  ],
  [
    'Koa 2',
    async (v: Verifier) => {
      const app = new Koa2();
      const router = new Router();
      router.get('/me', koaAuthenticate(v), (ctx) => {
        ctx.body = {
          subject: ctx.state.amas?.auth?.subject,
          cnf: ctx.state.amas?.auth?.confirmation ?? null,
        };
      });
      app.use(router.routes() as never);
      return listen(app.callback());
    },
  ],
] as const;

describe.each(frameworks)('%s adapter', (_name, serve) => {
  let strict: Listening;
  let lenient: Listening;
  beforeAll(async () => {
    strict = await serve(rejecting);
    lenient = await serve(allowing);
  });
  afterAll(async () => {
    await strict.close();
    await lenient.close();
  });

  const get = async (server: Listening, authorization: string) => {
    const res = await fetch(`${server.url}/me`, { headers: { authorization } });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers a bound token presented as Bearer with 401 and the RFC 6750 challenge, every time', async () => {
    const token = await idp.mint({ sub: 'thief', cnf: { jkt: JKT } });
    for (let i = 0; i < 2; i++) {
      const res = await get(strict, `Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(CHALLENGE);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body).toEqual({ error: 'token_sender_constrained', message: DESCRIPTION });
      expect(JSON.stringify(res.body)).not.toContain(token);
    }
  });

  it('lets ordinary bearer tokens through', async () => {
    expect(await get(strict, `Bearer ${await idp.mint({ sub: 'alice' })}`)).toMatchObject({
      status: 200,
      body: { subject: 'alice', cnf: null },
    });
  });

  it('does not read the DPoP authorization scheme as a bearer token', async () => {
    const res = await get(strict, `DPoP ${await idp.mint({ cnf: { jkt: JKT } })}`);
    expect(res).toMatchObject({ status: 401, body: { error: 'token_missing' } });
  });

  it("with 'allow', passes the token on with req.amas.auth.confirmation for the service to check", async () => {
    const res = await get(lenient, `Bearer ${await idp.mint({ sub: 'bob', cnf: { jkt: JKT } })}`);
    expect(res).toMatchObject({ status: 200, body: { subject: 'bob', cnf: { jkt: JKT } } });
  });
});
