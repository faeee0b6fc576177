import express5 from 'express';
import express4 from 'express4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOidcError } from '../src/errors.js';
import { authenticate, errorHandler, requireClaims, requireScopes } from '../src/express.js';
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
  ['Express 5', express5],
  ['Express 4', express4],
])('%s', (_name, express) => {
  let server: Listening;

  beforeAll(async () => {
    const app = express();
    app.use((req, _res, next) => {
      // Stands in for cookie-parser, and for another AMAS package that set its own state first.
      const cookie = req.headers['x-test-cookie'];
      if (typeof cookie === 'string') (req as { cookies?: object }).cookies = { at: cookie };
      req.amas = { ...req.amas, other: 'kept' } as typeof req.amas;
      next();
    });
    const who = (req: express5.Request, res: express5.Response) => {
      const auth = req.amas?.auth;
      res.json({
        subject: auth?.subject ?? null,
        scopes: auth?.scopes ?? null,
        other: (req.amas as Record<string, unknown> | undefined)?.other,
      });
    };
    const auth = authenticate(verifier);
    app.get('/me', auth, who);
    app.get('/optional', authenticate(verifier, { optional: true }), who);
    app.get('/run', auth, requireScopes('tools:run'), who);
    app.get('/any', auth, requireScopes(['tools:admin', 'tools:run'], { mode: 'any' }), who);
    app.get('/tenant', auth, requireClaims({ tenant: 'acme' }), who);
    app.get(
      '/predicate',
      auth,
      requireClaims((p) => p.clientId === 'orchestrator'),
      who,
    );
    app.get('/unguarded-scope', requireScopes('tools:run'), who);
    const router = express.Router();
    router.get('/me', auth, who);
    app.use('/mounted', router);
    app.get('/next', authenticate(verifier, { onError: 'next' }), who);
    app.get('/next-scope', auth, requireScopes('root', { onError: 'next' }), who);
    app.get('/default-handler', authenticate(verifier, { onError: 'next' }), who);
    app.use('/default-handler', errorHandler());
    app.use((err: unknown, _req: express5.Request, res: express5.Response, next: express5.NextFunction) => {
      if (!isOidcError(err)) return next(err);
      res.status(418).json({ handledByApp: err.code });
    });
    server = await listen(app);
  });
  afterAll(() => server.close());

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}${path}`, { headers });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };
  const bearer = async (claims: Record<string, unknown> = {}) => ({
    authorization: `Bearer ${await idp.mint(claims)}`,
  });

  it('puts the principal on req.amas.auth and keeps other AMAS state', async () => {
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
    expect(res.body).toEqual({ error: 'token_missing', message: 'No bearer token was presented.' });
  });

  it('answers 401 for an invalid token', async () => {
    const res = await get('/me', { authorization: `Bearer ${await idp.mint({}, { expiresIn: -60 })}` });
    expect(res).toMatchObject({ status: 401, body: { error: 'token_expired' } });
  });

  it('optional: passes without a token, never with an invalid one', async () => {
    expect(await get('/optional')).toMatchObject({ status: 200, body: { subject: null } });
    expect(await get('/optional', await bearer({ sub: 'bob' }))).toMatchObject({
      status: 200,
      body: { subject: 'bob' },
    });
    const bad = await get('/optional', { authorization: 'Bearer not.a.token' });
    expect(bad.status).toBe(401);
  });

  it('requireScopes: all by default, any on request; 403 otherwise', async () => {
    expect((await get('/run', await bearer({ scope: 'tools:run' }))).status).toBe(200);
    expect((await get('/any', await bearer({ scope: 'tools:run' }))).status).toBe(200);
    const denied = await get('/run', await bearer({ scope: 'tools:read' }));
    expect(denied).toMatchObject({ status: 403, body: { error: 'insufficient_scope' } });
    expect(denied.headers.get('www-authenticate')).toContain('scope="tools:run"');
  });

  it('requireClaims: values and predicates; 403 otherwise', async () => {
    expect((await get('/tenant', await bearer({ tenant: 'acme' }))).status).toBe(200);
    expect((await get('/tenant', await bearer({ tenant: 'globex' }))).status).toBe(403);
    expect((await get('/predicate', await bearer({ client_id: 'orchestrator' }))).status).toBe(200);
    expect((await get('/predicate', await bearer({ client_id: 'reviewer' }))).status).toBe(403);
  });

  it('a guard without authenticate answers 401', async () => {
    expect(await get('/unguarded-scope')).toMatchObject({ status: 401, body: { error: 'token_missing' } });
  });

  it('reads cookies and, when enabled, the query string of a mounted router (originalUrl)', async () => {
    const token = await idp.mint({ sub: 'carol' });
    expect(await get('/me', { 'x-test-cookie': token })).toMatchObject({
      status: 200,
      body: { subject: 'carol' },
    });
    expect(await get(`/mounted/me?access_token=${token}`)).toMatchObject({
      status: 200,
      body: { subject: 'carol' },
    });
  });

  it('answers 400 invalid_request for a token in two places', async () => {
    const token = await idp.mint();
    const res = await get(`/me?access_token=${token}`, { authorization: `Bearer ${token}` });
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(JSON.stringify(res.body)).not.toContain(token);
  });

  it("onError 'next' hands the OidcError to the app's error middleware", async () => {
    expect(await get('/next')).toMatchObject({ status: 418, body: { handledByApp: 'token_missing' } });
    expect(await get('/next-scope', await bearer())).toMatchObject({
      status: 418,
      body: { handledByApp: 'insufficient_scope' },
    });
  });

  it('errorHandler() answers OidcErrors passed to next', async () => {
    const res = await get('/default-handler');
    expect(res).toMatchObject({ status: 401, body: { error: 'token_missing' } });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers 503 (never 500) when the key source is down on a cold start', async () => {
    const down = await createTestIssuer({ audience: AUDIENCE });
    down.fail('down', { target: 'all' });
    const app = express();
    app.get('/', authenticate(down.verifierOptions()), (_req, res) => {
      res.send('ok');
    });
    const s = await listen(app);
    const res = await fetch(s.url, { headers: { authorization: `Bearer ${await down.mint()}` } });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'discovery_failed' });
    await s.close();
    await down.close();
  });

  it('exposes the verifier of options it was given, for readiness', async () => {
    const auth = authenticate(idp.verifierOptions());
    expect(auth.verifier.health().status).toBe('starting');
    await auth.verifier.warmUp();
    expect(auth.verifier.health().ready).toBe(true);
    await auth.verifier.close();
  });
});
