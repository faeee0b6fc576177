import Router from '@koa/router';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOidcError } from '../src/errors.js';
import { authenticate, errorHandler, requireClaims, requireScopes } from '../src/koa.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import type { Verifier } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, type Listening, listen } from './helpers.js';

let idp: TestIssuer;
let verifier: Verifier;

beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
  verifier = createVerifier({ ...idp.verifierOptions(), tokenSources: { cookie: 'at', query: true } });
});
afterAll(async () => {
  await verifier.close();
  await idp.close();
});

describe.each([
  ['Koa 3', Koa3],
  ['Koa 2', Koa2],
])('%s', (_name, Koa) => {
  let server: Listening;

  beforeAll(async () => {
    const app = new Koa();
    const router = new Router();
    const who = (ctx: Koa3.Context) => {
      const auth = ctx.state.amas?.auth;
      ctx.body = {
        subject: auth?.subject ?? null,
        scopes: auth?.scopes ?? null,
        other: (ctx.state.amas as Record<string, unknown> | undefined)?.other,
      };
    };
    app.use(async (ctx, next) => {
      ctx.state.amas = { other: 'kept' } as typeof ctx.state.amas;
      await next();
    });
    const auth = authenticate(verifier);
    router.get('/me', auth, who);
    router.get('/optional', authenticate(verifier, { optional: true }), who);
    router.get('/run', auth, requireScopes('tools:run'), who);
    router.get('/any', auth, requireScopes(['tools:admin', 'tools:run'], { mode: 'any' }), who);
    router.get('/tenant', auth, requireClaims({ tenant: 'acme' }), who);
    router.get(
      '/predicate',
      auth,
      requireClaims((p) => p.clientId === 'orchestrator'),
      who,
    );
    router.get('/unguarded-scope', requireScopes('tools:run'), who);
    router.get('/throw', authenticate(verifier, { onError: 'throw' }), who);
    router.get('/default-handler', errorHandler(), authenticate(verifier, { onError: 'throw' }), who);
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        if (!isOidcError(err)) throw err;
        ctx.status = 418;
        ctx.body = { handledByApp: err.code };
      }
    });
    app.use(router.routes());
    server = await listen(app.callback());
  });
  afterAll(() => server.close());

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}${path}`, { headers });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };
  const bearer = async (claims: Record<string, unknown> = {}) => ({
    authorization: `Bearer ${await idp.mint(claims)}`,
  });

  it('puts the principal on ctx.state.amas.auth and keeps other AMAS state', async () => {
    const res = await get('/me', await bearer({ sub: 'alice', scope: 'tools:run' }));
    expect(res).toMatchObject({
      status: 200,
      body: { subject: 'alice', scopes: ['tools:run'], other: 'kept' },
    });
  });

  it('answers 401 without a token, with the RFC 6750 challenge', async () => {
    const res = await get('/me');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toEqual({ error: 'token_missing', message: 'No bearer token was presented.' });
  });

  it('answers 401 for an invalid token', async () => {
    const res = await get('/me', { authorization: `Bearer ${await idp.mint({}, { expiresIn: -60 })}` });
    expect(res).toMatchObject({ status: 401, body: { error: 'token_expired' } });
  });

  it('optional: passes without a token, never with an invalid one', async () => {
    expect(await get('/optional')).toMatchObject({ status: 200, body: { subject: null } });
    expect((await get('/optional', { authorization: 'Bearer not.a.token' })).status).toBe(401);
  });

  it('requireScopes and requireClaims', async () => {
    expect((await get('/run', await bearer({ scope: 'tools:run' }))).status).toBe(200);
    expect((await get('/any', await bearer({ scope: 'tools:run' }))).status).toBe(200);
    const denied = await get('/run', await bearer({ scope: 'tools:read' }));
    expect(denied).toMatchObject({ status: 403, body: { error: 'insufficient_scope' } });
    expect(denied.headers.get('www-authenticate')).toContain('scope="tools:run"');
    expect((await get('/tenant', await bearer({ tenant: 'acme' }))).status).toBe(200);
    expect((await get('/tenant', await bearer({ tenant: 'globex' }))).status).toBe(403);
    expect((await get('/predicate', await bearer({ client_id: 'orchestrator' }))).status).toBe(200);
    expect((await get('/predicate', await bearer())).status).toBe(403);
    expect(await get('/unguarded-scope')).toMatchObject({ status: 401, body: { error: 'token_missing' } });
  });

  it('reads the Cookie header and, when enabled, the query string', async () => {
    const token = await idp.mint({ sub: 'carol' });
    expect(await get('/me', { cookie: `at=${token}` })).toMatchObject({
      status: 200,
      body: { subject: 'carol' },
    });
    expect(await get(`/me?access_token=${token}`)).toMatchObject({ status: 200, body: { subject: 'carol' } });
  });

  it('answers 400 invalid_request for a token in two places', async () => {
    const token = await idp.mint();
    expect(await get('/me', { authorization: `Bearer ${token}`, cookie: `at=${token}` })).toMatchObject({
      status: 400,
      body: { error: 'invalid_request' },
    });
  });

  it("onError 'throw' hands the OidcError to the app's error middleware; errorHandler() answers it", async () => {
    expect(await get('/throw')).toMatchObject({ status: 418, body: { handledByApp: 'token_missing' } });
    const res = await get('/default-handler');
    expect(res).toMatchObject({ status: 401, body: { error: 'token_missing' } });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers 503 (never 500) when the key source is down on a cold start', async () => {
    const down = await createTestIssuer({ audience: AUDIENCE });
    down.fail('error', { status: 500 });
    const app = new Koa();
    app.use(authenticate(down.verifierOptions()));
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const s = await listen(app.callback());
    const res = await fetch(s.url, { headers: { authorization: `Bearer ${await down.mint()}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await res.json()).toMatchObject({ error: 'jwks_unavailable' });
    await s.close();
    await down.close();
  });
});
