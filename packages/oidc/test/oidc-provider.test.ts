import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, decodePart, type Listening, listen, rejectsWith, sleep } from './helpers.js';

// A real OpenID Provider (oidc-provider 9) on 127.0.0.1, issuing client-credentials JWT access tokens.
// Key rotation restarts the provider with a new key first and the old key still published, the way
// operators rotate; "down" drops every connection.

const CLIENT = { id: 'agent-runner', secret: 'agent-runner-secret-0123456789abcdef' };

async function privateKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'ES256', use: 'sig' };
}

function provider(issuer: string, keys: JWK[]): Provider {
  return new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.id,
        client_secret: CLIENT.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: 'tools:run tools:read',
      },
    ],
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    scopes: ['tools:run', 'tools:read'],
    jwks: { keys: keys as never },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'tools:run tools:read',
          audience: AUDIENCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
}

let server: Listening;
let issuer: string;
let current: Provider;
let down = false;
let jwksFetches = 0;
let signingKeys: JWK[];

async function token(scope = 'tools:run'): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: AUDIENCE }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string };
  if (!body.access_token) throw new Error(`token endpoint: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

beforeAll(async () => {
  // The issuer URL holds the port, so listen first and construct the provider afterwards.
  server = await listen((req, res) => {
    if (down) {
      req.socket.destroy();
      return;
    }
    if (req.url?.startsWith('/jwks')) jwksFetches++;
    current.callback()(req, res);
  });
  issuer = server.url;
  signingKeys = [await privateKey()];
  current = provider(issuer, signingKeys);
});
afterAll(() => server.close());

describe('against a real oidc-provider', () => {
  it('verifies client-credentials JWT access tokens through discovery, in RFC 9068 mode', async () => {
    const verifier = createVerifier({ issuer, audience: AUDIENCE, profile: 'rfc9068' });
    const accessToken = await token('tools:run tools:read');
    expect(decodePart(accessToken, 0)).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    const principal = await verifier.verify(accessToken);
    expect(principal).toMatchObject({
      issuer,
      audience: [AUDIENCE],
      clientId: CLIENT.id,
      scopes: ['tools:run', 'tools:read'],
      header: { alg: 'ES256', kid: signingKeys[0]?.kid, typ: 'at+jwt' },
    });
    expect(verifier.health()).toMatchObject({
      ready: true,
      status: 'ok',
      issuers: [{ source: 'discovery' }],
    });
    await verifier.close();
  });

  it('picks up a key rotation on the provider within 5 s, with the default policy', async () => {
    const verifier = createVerifier({ issuer, audience: AUDIENCE });
    await verifier.warmUp();
    const before = await token();
    await verifier.verify(before);

    const next = await privateKey();
    signingKeys = [next, ...signingKeys];
    current = provider(issuer, signingKeys);
    const rotated = Date.now();
    const after = await token();
    expect(decodePart(after, 0).kid).toBe(next.kid);

    let acceptedAfter = Number.POSITIVE_INFINITY;
    while (Date.now() - rotated < 10_000) {
      const ok = await verifier.verify(after).then(
        () => true,
        () => false,
      );
      if (ok) {
        acceptedAfter = Date.now() - rotated;
        break;
      }
      await sleep(100);
    }
    expect(acceptedAfter).toBeLessThan(5000);
    await expect(verifier.verify(before)).resolves.toBeDefined();
    await verifier.close();
  });

  it('keeps verifying after warm-up while the provider is down, and tells an outage from a bad token', async () => {
    const verifier = createVerifier({ issuer, audience: AUDIENCE, cache: false, jwks: { cooldown: 0.1 } });
    await verifier.warmUp();
    const minted = await Promise.all([token(), token('tools:read')]);
    jwksFetches = 0;
    down = true;
    try {
      for (const t of minted) await expect(verifier.verify(t)).resolves.toBeDefined();
      expect(jwksFetches).toBe(0);
      // A token signed by a key the verifier has never seen cannot be checked while the provider is down.
      await sleep(150); // past the cooldown, so the verifier tries (and fails) to refetch
      const unseen = await privateKey();
      const { SignJWT, importJWK } = await import('jose');
      const forged = await new SignJWT({
        iss: issuer,
        aud: AUDIENCE,
        sub: 'x',
        exp: Math.floor(Date.now() / 1000) + 60,
      })
        .setProtectedHeader({ alg: 'ES256', kid: unseen.kid })
        .sign(await importJWK(unseen, 'ES256'));
      await rejectsWith(verifier.verify(forged), 'jwks_unavailable', 503);
      expect(verifier.health()).toMatchObject({ ready: true, status: 'degraded' });
    } finally {
      down = false;
    }
    await verifier.close();
  });
});
