import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { decodePart } from './helpers.js';

let idp: TestIssuer;

beforeAll(async () => {
  idp = await createTestIssuer({
    audience: 'https://gateway.test',
    algorithm: 'ES256',
    clients: {
      reviewer: {
        secret: 'reviewer-secret',
        scopes: ['files:read', 'tools:run'],
        claims: { agent_role: 'code_reviewer' },
      },
    },
  });
});
afterAll(() => idp.close());

const form = (body: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(body),
});

describe('createTestIssuer', () => {
  it('listens on 127.0.0.1 and serves a discovery document that names itself', async () => {
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const doc = (await (await fetch(idp.discoveryUri)).json()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      issuer: idp.issuer,
      jwks_uri: idp.jwksUri,
      token_endpoint: idp.tokenEndpoint,
    });
    const jwks = (await (await fetch(idp.jwksUri)).json()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys.map((k) => k.kid)).toEqual([idp.kid]);
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('mints tokens with any claims and scopes, and options for attack tests', async () => {
    const token = await idp.mint(
      { sub: 'alice', scope: ['a', 'b'], tenant: 'acme' },
      { expiresIn: 120, header: { cty: 'x' } },
    );
    expect(decodePart(token, 0)).toMatchObject({ alg: 'ES256', kid: idp.kid, typ: 'at+jwt', cty: 'x' });
    const claims = decodePart(token, 1);
    expect(claims).toMatchObject({
      iss: idp.issuer,
      aud: 'https://gateway.test',
      sub: 'alice',
      scope: 'a b',
      tenant: 'acme',
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(120);
    expect(decodePart(await idp.mint({}, { omit: ['exp', 'jti'] }), 1)).not.toHaveProperty('exp');
    await expect(idp.mint({}, { kid: 'nope' })).rejects.toThrow('no published key');
  });

  it('issues client-credentials tokens that a verifier accepts', async () => {
    const res = await fetch(idp.tokenEndpoint, {
      ...form({ grant_type: 'client_credentials', scope: 'tools:run' }),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('reviewer:reviewer-secret').toString('base64')}`,
      },
    });
    const body = (await res.json()) as { access_token: string; token_type: string; scope: string };
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'tools:run' });
    const verifier = createVerifier({ ...idp.verifierOptions(), profile: 'rfc9068' });
    const principal = await verifier.verify(body.access_token);
    expect(principal).toMatchObject({ subject: 'reviewer', clientId: 'reviewer', scopes: ['tools:run'] });
    expect(principal.claims.agent_role).toBe('code_reviewer');
    await verifier.close();
  });

  it('refuses wrong client secrets, unknown scopes and other grants', async () => {
    const bad = await fetch(
      idp.tokenEndpoint,
      form({ grant_type: 'client_credentials', client_id: 'reviewer', client_secret: 'x' }),
    );
    expect(bad.status).toBe(401);
    const scope = await fetch(
      idp.tokenEndpoint,
      form({
        grant_type: 'client_credentials',
        client_id: 'reviewer',
        client_secret: 'reviewer-secret',
        scope: 'root',
      }),
    );
    expect(scope.status).toBe(400);
    const grant = await fetch(
      idp.tokenEndpoint,
      form({ grant_type: 'password', client_id: 'reviewer', client_secret: 'reviewer-secret' }),
    );
    expect(grant.status).toBe(400);
  });

  it('rotates, adds and removes keys', async () => {
    const first = idp.kid;
    const added = await idp.addKey();
    expect(idp.kids).toEqual([first, added]);
    expect(idp.kid).toBe(first);
    const rotated = await idp.rotate();
    expect(idp.kid).toBe(rotated);
    idp.removeKey(added);
    expect(idp.kids).toEqual([first, rotated]);
    await idp.rotate({ removeOld: true });
    expect(idp.kids).toEqual([idp.kid]);
  });

  it('fails on demand and recovers, counting requests', async () => {
    idp.resetRequests();
    idp.fail('error', { status: 502, target: 'jwks' });
    expect((await fetch(idp.jwksUri)).status).toBe(502);
    expect((await fetch(idp.discoveryUri)).status).toBe(200);
    idp.fail('garbage', { target: 'discovery' });
    await expect((await fetch(idp.discoveryUri)).json()).rejects.toThrow();
    idp.fail('down', { target: 'all' });
    await expect(fetch(idp.jwksUri)).rejects.toThrow();
    idp.fail('redirect');
    expect((await fetch(idp.jwksUri, { redirect: 'manual' })).headers.get('location')).toBe(
      `${idp.issuer}/moved`,
    );
    idp.recover();
    expect((await fetch(idp.jwksUri)).status).toBe(200);
    expect(idp.requests.jwks).toBeGreaterThanOrEqual(3);
    expect(idp.requests.discovery).toBe(2);
  });

  it('serves tenants under a path', async () => {
    const tenant = await createTestIssuer({ path: '/realms/acme/' });
    expect(tenant.issuer).toMatch(/\/realms\/acme$/);
    const verifier = createVerifier(tenant.verifierOptions());
    await expect(verifier.verify(await tenant.mint())).resolves.toMatchObject({ issuer: tenant.issuer });
    await verifier.close();
    await tenant.close();
  });
});
