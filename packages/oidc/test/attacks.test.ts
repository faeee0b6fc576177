import { createHmac, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { exportSPKI } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isOidcError } from '../src/errors.js';
import { hasClaims } from '../src/guards.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import type { Verifier } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import {
  AUDIENCE,
  b64,
  decodePart,
  ISSUER,
  type JwksServer,
  jwksServer,
  makeKey,
  reassemble,
  sign,
  signRaw,
  signUnchecked,
  type TestKey,
} from './helpers.js';

// One test per attack. Every attack must end in a typed 4xx error, never a crash, never a 5xx, and
// never a fetch the attacker chose. The cases cover classes (algorithm confusion, key injection,
// hostile kids, time, issuer/audience confusion, signature tampering, critical headers, parsing,
// token sources, token-type confusion, key-set poisoning), not only the strings listed in the issue.

let keyA: TestKey;
let keyB: TestKey;
let ecKey: TestKey;
let attacker: TestKey;
let jwks: JwksServer;
let evil: TestIssuer;
let verifier: Verifier;
let cached: Verifier;

beforeAll(async () => {
  [keyA, keyB, ecKey, attacker] = await Promise.all([
    makeKey('RS256', 'key-a'),
    makeKey('RS256', 'key-b'),
    makeKey('ES256', 'key-ec'),
    makeKey('RS256', 'key-a'), // the attacker reuses a real kid
  ]);
  jwks = await jwksServer({ keys: [keyA.publicJwk, keyB.publicJwk, ecKey.publicJwk] });
  evil = await createTestIssuer({ audience: AUDIENCE });
  verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.jwksUri, cache: false });
  cached = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.jwksUri });
  await Promise.all([verifier.warmUp(), cached.warmUp()]);
});
afterAll(async () => {
  await verifier.close();
  await cached.close();
  await jwks.close();
  await evil.close();
});
beforeEach(() => evil.resetRequests());

/**
 * Asserts a 4xx OidcError with this code, whose message and headers do not contain the token. Without
 * an explicit verifier, both the uncached verifier and one with the verified-token cache (holding
 * genuine tokens) must refuse it.
 */
async function refused(token: string, code: string, v?: Verifier): Promise<void> {
  if (v === undefined) {
    await refused(token, code, verifier);
    await refused(token, code, cached);
    return;
  }
  const err = await v.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isOidcError(err), 'an OidcError').toBe(true);
  if (!isOidcError(err)) return;
  expect(err.code).toBe(code);
  expect(err.status).toBeGreaterThanOrEqual(400);
  expect(err.status).toBeLessThan(500);
  const visible = JSON.stringify([err.toJSON(), err.headers]);
  for (const part of token.split('.').filter((p) => p.length >= 8)) expect(visible).not.toContain(part);
}

function now() {
  return Math.floor(Date.now() / 1000);
}

function claims(extra: Record<string, unknown> = {}) {
  return { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', iat: now(), exp: now() + 600, ...extra };
}

function unsigned(header: Record<string, unknown>, payload: Record<string, unknown> = claims()): string {
  return `${b64(header)}.${b64(payload)}.`;
}

function hmac(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  secret: string | Buffer,
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const hash = header.alg === 'HS384' ? 'sha384' : header.alg === 'HS512' ? 'sha512' : 'sha256';
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

describe('sanity', () => {
  it('accepts a genuine token (so every refusal below is the attack, not the setup)', async () => {
    const genuine = await sign(keyA);
    await expect(verifier.verify(genuine)).resolves.toMatchObject({ subject: 'user-1' });
    await expect(cached.verify(genuine)).resolves.toMatchObject({ subject: 'user-1' });
    await expect(cached.verify(await sign(ecKey))).resolves.toMatchObject({ subject: 'user-1' });
  });
});

describe('algorithm confusion', () => {
  it.each(['none', 'None', 'NONE', 'nOnE'])('refuses alg %s', async (alg) => {
    await refused(unsigned({ alg, typ: 'JWT' }), 'algorithm_not_allowed');
  });

  it('refuses alg none even with a signature attached', async () => {
    const genuine = await sign(keyA);
    await refused(reassemble(genuine, { header: { alg: 'none', kid: 'key-a' } }), 'algorithm_not_allowed');
  });

  it('refuses HS256 keyed with the RSA public key as PEM', async () => {
    const pem = await exportSPKI(createPublicKey({ key: keyA.publicJwk as never, format: 'jwk' }));
    await refused(hmac({ alg: 'HS256', kid: 'key-a' }, claims(), pem), 'algorithm_not_allowed');
  });

  it('refuses HS256 keyed with the RSA public key as a JWK', async () => {
    await refused(
      hmac({ alg: 'HS256', kid: 'key-a' }, claims(), JSON.stringify(keyA.publicJwk)),
      'algorithm_not_allowed',
    );
  });

  it.each(['HS384', 'HS512'])('refuses %s keyed with public key material', async (alg) => {
    await refused(hmac({ alg, kid: 'key-a' }, claims(), String(keyA.publicJwk.n)), 'algorithm_not_allowed');
  });

  it('refuses HS256 even when a static-key verifier holds the key material', async () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [keyA.publicJwk] });
    await refused(
      hmac({ alg: 'HS256' }, claims(), JSON.stringify(keyA.publicJwk)),
      'algorithm_not_allowed',
      v,
    );
  });

  it('refuses an RS256 token at a verifier that only has an HMAC secret', async () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, secret: 'x'.repeat(32) });
    await refused(await sign(keyA), 'algorithm_not_allowed', v);
  });

  it('refuses an algorithm outside the configured list', async () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.jwksUri,
      algorithms: ['ES256'],
    });
    await refused(await sign(keyA), 'algorithm_not_allowed', v);
  });

  it('refuses an unknown alg name', async () => {
    const genuine = await sign(keyA);
    await refused(reassemble(genuine, { header: { alg: 'RS1024', kid: 'key-a' } }), 'algorithm_not_allowed');
  });

  it('refuses a non-string alg', async () => {
    await refused(unsigned({ alg: ['RS256'] }), 'token_malformed');
  });

  it('refuses an RS256 signature relabelled as PS256 when the JWK pins its alg', async () => {
    const genuine = await sign(keyA);
    await refused(
      reassemble(genuine, { header: { alg: 'PS256', kid: 'key-a', typ: 'at+jwt' } }),
      'key_not_found',
    );
  });

  it('refuses an RS256 signature relabelled as PS256 when the JWK has no alg', async () => {
    const { alg: _alg, ...unpinned } = keyA.publicJwk;
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [unpinned] });
    const genuine = await sign(keyA);
    await refused(
      reassemble(genuine, { header: { alg: 'PS256', kid: 'key-a', typ: 'at+jwt' } }),
      'signature_invalid',
      v,
    );
  });

  it('refuses a header alg of another key family than the kid (ES256 on an RSA kid)', async () => {
    const genuine = await sign(keyA);
    await refused(reassemble(genuine, { header: { alg: 'ES256', kid: 'key-a' } }), 'key_not_found');
  });

  it('refuses the ECDSA "psychic signature" (r = s = 0)', async () => {
    const header = { alg: 'ES256', kid: 'key-ec', typ: 'at+jwt' };
    await refused(
      `${b64(header)}.${b64(claims())}.${Buffer.alloc(64).toString('base64url')}`,
      'signature_invalid',
    );
  });

  it('refuses an ECDSA signature in DER instead of the JOSE raw form', async () => {
    const genuine = await sign(ecKey);
    const raw = Buffer.from(genuine.split('.')[2] as string, 'base64url');
    const der = Buffer.concat([
      Buffer.from([0x30, 0x44, 0x02, 0x20]),
      raw.subarray(0, 32),
      Buffer.from([0x02, 0x20]),
      raw.subarray(32),
    ]);
    await refused(reassemble(genuine, { signature: der.toString('base64url') }), 'signature_invalid');
  });
});

describe('key injection', () => {
  it('ignores an embedded jwk header (the attacker signs with the key it embeds)', async () => {
    const token = await sign(attacker, {}, { kid: 'attacker', jwk: attacker.publicJwk });
    await refused(token, 'key_not_found');
  });

  it('ignores an embedded jwk whose kid is a real kid', async () => {
    const token = await sign(attacker, {}, { kid: 'key-a', jwk: attacker.publicJwk });
    await refused(token, 'signature_invalid');
  });

  it('never fetches a jku pointing at the attacker JWKS', async () => {
    const token = await evil.mint({ iss: ISSUER, aud: AUDIENCE }, { header: { jku: evil.jwksUri } });
    await refused(token, 'key_not_found');
    expect(evil.requests.jwks).toBe(0);
  });

  it('never fetches an x5u pointing at the attacker', async () => {
    const token = await evil.mint(
      { iss: ISSUER, aud: AUDIENCE },
      { header: { x5u: `${evil.issuer}/cert.pem` } },
    );
    await refused(token, 'key_not_found');
    expect(evil.requests).toEqual({ discovery: 0, jwks: 0, token: 0 });
  });

  it('ignores an x5c certificate chain in the header', async () => {
    const token = await sign(
      attacker,
      {},
      { kid: 'key-a', x5c: [Buffer.from('attacker cert').toString('base64')] },
    );
    await refused(token, 'signature_invalid');
  });

  it('refuses a token whose iss points at the attacker, without discovering it', async () => {
    await refused(await evil.mint(), 'issuer_mismatch');
    expect(evil.requests).toEqual({ discovery: 0, jwks: 0, token: 0 });
  });
});

describe('hostile kids', () => {
  it.each([
    ['path traversal', '../../../../../../dev/null'],
    ['SQL injection', "' OR '1'='1' --"],
    ['a URL', 'https://attacker.test/jwks.json'],
    ['__proto__', '__proto__'],
    ['constructor', 'constructor'],
    ['toString', 'toString'],
    ['CRLF header injection', 'a\r\nSet-Cookie: x=1'],
    ['NUL byte', 'key-a\u0000'],
    ['non-ASCII look-alike', 'key-\u0430'],
  ])('refuses a %s kid with 401 key_not_found', async (_name, kid) => {
    await refused(await sign(attacker, {}, { kid }), 'key_not_found');
  });

  it('does not echo a CRLF kid into WWW-Authenticate', async () => {
    const err = await verifier
      .verify(await sign(attacker, {}, { kid: 'x\r\nInjected: yes' }))
      .catch((e: unknown) => e);
    expect(JSON.stringify((err as { headers: unknown }).headers)).not.toMatch(/Injected|\\r|\\n/);
  });

  it('refuses a 10 kB kid as malformed', async () => {
    await refused(await sign(attacker, {}, { kid: 'k'.repeat(10_000) }), 'token_malformed');
  });

  it.each([
    ['a number', 7],
    ['an object', { $ne: null }],
    ['an array', ['key-a']],
    ['an empty string', ''],
  ])('refuses a kid that is %s as malformed', async (_name, kid) => {
    const genuine = await sign(keyA);
    await refused(reassemble(genuine, { header: { alg: 'RS256', kid } }), 'token_malformed');
  });

  it('refuses a kid-less token when several keys could match', async () => {
    const genuine = await sign(keyA, {}, { kid: undefined });
    await refused(genuine, 'key_not_found');
  });

  it('refuses a kid-less token at a single-key verifier when another key signed it', async () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [keyA.publicJwk] });
    await refused(await sign(attacker, {}, { kid: undefined }), 'signature_invalid', v);
  });
});

describe('time claims', () => {
  it('refuses an expired token', async () => {
    await refused(await sign(keyA, { exp: now() - 60 }), 'token_expired');
  });

  it('refuses a token that is not valid yet', async () => {
    await refused(await sign(keyA, { nbf: now() + 600 }), 'token_not_yet_valid');
  });

  it('refuses a token without exp', async () => {
    await refused(await sign(keyA, { exp: undefined }), 'claim_invalid');
  });

  it('refuses exp as a string', async () => {
    await refused(await sign(keyA, { exp: String(now() + 600) }), 'claim_invalid');
  });

  it('refuses exp as an object', async () => {
    await refused(await sign(keyA, { exp: { $gt: 0 } }), 'claim_invalid');
  });

  it('refuses an infinite exp (1e400 in JSON)', async () => {
    const payload = JSON.stringify(claims()).replace(/"exp":\d+/, '"exp":1e400');
    await refused(await signRaw(keyA, { kid: 'key-a' }, payload), 'claim_invalid');
  });

  it('refuses nbf as a string', async () => {
    await refused(await sign(keyA, { nbf: 'yesterday' }), 'claim_invalid');
  });

  it('refuses an iat in the future when maxTokenAge applies', async () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [keyA.publicJwk],
      maxTokenAge: 300,
    });
    await refused(await sign(keyA, { iat: now() + 3600 }), 'token_not_yet_valid', v);
  });
});

describe('issuer and audience confusion', () => {
  it('refuses a wrong iss', async () => {
    await refused(await sign(keyA, { iss: 'https://other.test/' }), 'issuer_mismatch');
  });

  it('refuses an array iss that contains the right issuer', async () => {
    await refused(await sign(keyA, { iss: [ISSUER] }), 'issuer_mismatch');
  });

  it('refuses a missing iss', async () => {
    await refused(await sign(keyA, { iss: undefined }), 'issuer_mismatch');
  });

  it.each([ISSUER.slice(0, -1), ISSUER.toUpperCase(), ` ${ISSUER}`, `${ISSUER}#`])(
    'refuses the iss variant %j',
    async (iss) => {
      await refused(await sign(keyA, { iss }), 'issuer_mismatch');
    },
  );

  it('refuses a wrong aud', async () => {
    await refused(await sign(keyA, { aud: 'https://other-api.test' }), 'audience_mismatch');
  });

  it('refuses an aud list without this API', async () => {
    await refused(await sign(keyA, { aud: ['https://a.test', 'https://b.test'] }), 'audience_mismatch');
  });

  it('refuses an empty aud list', async () => {
    await refused(await sign(keyA, { aud: [] }), 'audience_mismatch');
  });

  it('refuses aud of the wrong type', async () => {
    await refused(await sign(keyA, { aud: { 0: AUDIENCE } }), 'audience_mismatch');
  });
});

describe('signature tampering', () => {
  it('refuses a stripped signature', async () => {
    const genuine = await sign(keyA);
    await refused(reassemble(genuine, { signature: '' }), 'signature_invalid');
  });

  it('refuses a tampered payload with the original signature', async () => {
    const genuine = await sign(keyA);
    await refused(
      reassemble(genuine, { payload: { ...decodePart(genuine, 1), sub: 'admin' } }),
      'signature_invalid',
    );
  });

  it('refuses a tampered header with the original signature', async () => {
    const genuine = await sign(keyA);
    await refused(
      reassemble(genuine, { header: { ...decodePart(genuine, 0), typ: 'JWT' } }),
      'signature_invalid',
    );
  });

  it('refuses a signature by another valid key of the same issuer', async () => {
    await refused(await sign(keyB, {}, { kid: 'key-a' }), 'signature_invalid');
  });

  it('refuses a signature by an attacker key that reuses a real kid', async () => {
    await refused(await sign(attacker, {}, { kid: 'key-a' }), 'signature_invalid');
  });

  it('refuses a truncated signature', async () => {
    const genuine = await sign(keyA);
    await refused(genuine.slice(0, -10), 'signature_invalid');
  });

  it('refuses a non-canonical base64url signature that decodes to the same bytes (malleability)', async () => {
    const genuine = await sign(ecKey); // 64-byte signature: 86 characters, the last one carries 4 unused bits
    const last = genuine.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = `${genuine.slice(0, -1)}${alphabet[alphabet.indexOf(last) | 1]}`;
    expect(Buffer.from(twin.split('.')[2] as string, 'base64url')).toEqual(
      Buffer.from(genuine.split('.')[2] as string, 'base64url'),
    );
    await refused(twin, 'token_malformed');
  });

  it('refuses random signature bytes', async () => {
    const genuine = await sign(keyA);
    await refused(
      reassemble(genuine, { signature: Buffer.alloc(256, 7).toString('base64url') }),
      'signature_invalid',
    );
  });
});

describe('critical headers', () => {
  it('refuses an unknown crit extension, correctly signed', async () => {
    const header = { kid: 'key-a', crit: ['urn:example:policy'], 'urn:example:policy': 1 };
    await refused(signUnchecked(keyA.privateKey, header, claims()), 'token_malformed');
  });

  it('refuses crit naming a registered claim, correctly signed', async () => {
    await refused(
      signUnchecked(keyA.privateKey, { kid: 'key-a', crit: ['exp'], exp: 1 }, claims()),
      'token_malformed',
    );
  });

  it('refuses b64: false (unencoded payload)', async () => {
    const genuine = await sign(keyA);
    await refused(
      reassemble(genuine, { header: { alg: 'RS256', kid: 'key-a', b64: false, crit: ['b64'] } }),
      'token_malformed',
    );
  });

  it('refuses an empty or malformed crit', async () => {
    const genuine = await sign(keyA);
    await refused(
      reassemble(genuine, { header: { alg: 'RS256', kid: 'key-a', crit: [] } }),
      'token_malformed',
    );
    await refused(
      reassemble(genuine, { header: { alg: 'RS256', kid: 'key-a', crit: 'exp' } }),
      'token_malformed',
    );
  });
});

describe('parsing', () => {
  it('refuses an oversized token before parsing it', async () => {
    await refused(await sign(keyA, { pad: 'x'.repeat(9000) }), 'token_malformed');
  });

  it.each([
    ['standard base64 characters', (t: string) => `${t.replace(/-/g, '+').replace(/_/g, '/')}+/`],
    ['padding', (t: string) => t.replace('.', '==.')],
    ['whitespace inside', (t: string) => t.replace('.', ' .')],
    ['an impossible length (4n+1)', (t: string) => t.replace('.', 'A.')],
  ])('refuses malformed base64url: %s', async (_name, mangle) => {
    const err = await verifier.verify(mangle(await sign(keyA))).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401 });
    expect(['token_malformed', 'signature_invalid']).toContain((err as { code: string }).code);
  });

  it('refuses a header that is not JSON', async () => {
    await refused(
      `${Buffer.from('{alg:RS256').toString('base64url')}.${b64(claims())}.c2ln`,
      'token_malformed',
    );
  });

  it('refuses a payload that is not JSON', async () => {
    await refused(
      `${b64({ alg: 'RS256', kid: 'key-a' })}.${Buffer.from('not json').toString('base64url')}.c2ln`,
      'token_malformed',
    );
  });

  it.each([
    ['an array', [ISSUER]],
    ['a string', ISSUER],
    ['null', null],
    ['a number', 42],
  ])('refuses a payload that is %s', async (_name, payload) => {
    await refused(`${b64({ alg: 'RS256', kid: 'key-a' })}.${b64(payload)}.c2ln`, 'token_malformed');
  });

  it('refuses invalid UTF-8 in the header', async () => {
    await refused(
      `${Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64url')}.${b64(claims())}.c2ln`,
      'token_malformed',
    );
  });

  it.each([
    ['two segments', 'eyJhbGciOiJSUzI1NiJ9.e30'],
    ['four segments', 'a.b.c.d'],
    ['a JWE (five segments)', 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d'],
    ['an empty string', ''],
    ['only dots', '..'],
    ['non-ASCII', 'ey\u00e9.ey.sig'],
  ])('refuses %s', async (_name, token) => {
    await refused(token, 'token_malformed');
  });

  it('survives deeply nested JSON in the payload', async () => {
    const deep = `${'['.repeat(2000)}${']'.repeat(2000)}`;
    await refused(
      `${b64({ alg: 'RS256', kid: 'key-a' })}.${Buffer.from(deep).toString('base64url')}.c2ln`,
      'token_malformed',
    );
  });

  it('is not confused by duplicate members (the last wins, as in jose)', async () => {
    const payload = JSON.stringify(claims()).replace('{', `{"iss":"https://evil.test/",`);
    const header = b64({ alg: 'RS256', kid: 'key-a' });
    await refused(`${header}.${Buffer.from(payload).toString('base64url')}.c2ln`, 'signature_invalid');
  });

  it('refuses non-string input', async () => {
    for (const input of [undefined, null, 42, {}, ['a.b.c']]) {
      await expect(verifier.verify(input as unknown as string)).rejects.toMatchObject({
        code: 'token_malformed',
      });
    }
  });

  it('does not let __proto__ in signed claims pollute prototypes or satisfy claim checks', async () => {
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [keyA.publicJwk] });
    const payload = JSON.stringify(claims()).replace('{', '{"__proto__":{"admin":true,"scope":"root"},');
    const p = await v.verify(await signRaw(keyA, { kid: 'key-a' }, payload));
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(p.scopes).toEqual([]);
    expect(hasClaims(p, { admin: true })).toBe(false);
  });
});

describe('token-type confusion', () => {
  it('refuses an ID token presented as an access token in RFC 9068 mode', async () => {
    const idp = await createTestIssuer({ audience: AUDIENCE });
    const v = createVerifier({ ...idp.verifierOptions(), profile: 'rfc9068' });
    const idToken = await idp.mint({ aud: 'client-123', nonce: 'n', auth_time: now() }, { typ: 'JWT' });
    await refused(idToken, 'token_type_invalid', v);
    // Even with this API's audience, typ JWT is not an access token.
    await refused(await idp.mint({}, { typ: 'JWT' }), 'token_type_invalid', v);
    await refused(await idp.mint({}, { header: { typ: undefined } }), 'token_type_invalid', v);
    await v.close();
    await idp.close();
  });

  it('refuses a token minted for another API of the same issuer', async () => {
    await refused(await sign(keyA, { aud: 'https://payments.test' }), 'audience_mismatch');
  });
});

describe('key-set poisoning', () => {
  it('never uses a symmetric (oct) key published in the JWKS', async () => {
    const secret = 'published-secret-that-anyone-can-read';
    const server = await jwksServer({
      keys: [keyA.publicJwk, { kty: 'oct', kid: 'oct-1', k: Buffer.from(secret).toString('base64url') }],
    });
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri });
    await refused(hmac({ alg: 'HS256', kid: 'oct-1' }, claims(), secret), 'algorithm_not_allowed', v);
    await v.close();
    await server.close();
  });

  it('never uses an encryption key (use: enc) to verify', async () => {
    const enc = await makeKey('RS256', 'enc-1');
    const server = await jwksServer({ keys: [keyA.publicJwk, { ...enc.publicJwk, use: 'enc' }] });
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: server.jwksUri,
      jwks: { cooldown: 60 },
    });
    await v.warmUp();
    await refused(await sign(enc), 'key_not_found', v);
    await v.close();
    await server.close();
  });

  it('never uses an RSA key shorter than 2048 bits', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...weak.publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256' };
    const server = await jwksServer({ keys: [keyA.publicJwk, jwk] });
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: server.jwksUri,
      jwks: { cooldown: 60 },
    });
    await v.warmUp();
    expect(v.health().issuers[0]?.keys).toBe(1);
    await refused(signUnchecked(weak.privateKey, { kid: 'weak' }, claims()), 'key_not_found', v);
    await v.close();
    await server.close();
  });

  it('drops private key members published by mistake and never keeps them', async () => {
    const leaked = await (await import('jose')).exportJWK(keyB.privateKey);
    const server = await jwksServer({ keys: [keyA.publicJwk, { ...leaked, kid: 'leaked' }] });
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: server.jwksUri,
      jwks: { cooldown: 60 },
    });
    await v.warmUp();
    expect(v.health().issuers[0]?.keys).toBe(1);
    await refused(await sign(keyB, {}, { kid: 'leaked' }), 'key_not_found', v);
    await v.close();
    await server.close();
  });

  it('refuses a flood of distinct forged kids without a fetch per kid', async () => {
    const before = jwks.hits;
    for (let i = 0; i < 50; i++)
      await refused(await sign(attacker, {}, { kid: randomUUID() }), 'key_not_found');
    expect(jwks.hits - before).toBeLessThanOrEqual(1);
  });
});

describe('token sources', () => {
  const everywhere = () =>
    createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [keyA.publicJwk],
      tokenSources: { cookie: 'at', query: true },
    });

  it('refuses a token in the header and the query string with 400', async () => {
    const t = await sign(keyA);
    await expect(
      everywhere().verifyRequest({ headers: { authorization: `Bearer ${t}` }, url: `/?access_token=${t}` }),
    ).rejects.toMatchObject({
      code: 'invalid_request',
      status: 400,
    });
  });

  it('refuses two different tokens, header and cookie, with 400 (no choosing the weaker one)', async () => {
    const [t, u] = [await sign(keyA), await sign(keyA, { sub: 'admin' })];
    await expect(
      everywhere().verifyRequest({ headers: { authorization: `Bearer ${t}`, cookie: `at=${u}` } }),
    ).rejects.toMatchObject({
      code: 'invalid_request',
    });
  });

  it('refuses two Authorization headers with 400', async () => {
    const t = await sign(keyA);
    await expect(
      verifier.verifyRequest({ headers: { authorization: [`Bearer ${t}`, `Bearer ${t}`] } }),
    ).rejects.toMatchObject({
      code: 'invalid_request',
    });
  });

  it('does not accept a query-string token unless enabled', async () => {
    await expect(
      verifier.verifyRequest({ headers: {}, url: `/?access_token=${await sign(keyA)}` }),
    ).rejects.toMatchObject({
      code: 'token_missing',
      status: 401,
    });
  });

  it('parses a 16 KiB Authorization header of spaces in linear time', async () => {
    const started = Date.now();
    await expect(
      verifier.verifyRequest({ headers: { authorization: `Bearer x${' '.repeat(16_000)}y` } }),
    ).rejects.toMatchObject({
      code: 'token_malformed',
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('fuzzing', () => {
  const json = fc.jsonValue({ maxDepth: 3 });
  const header = fc.oneof(
    fc.record(
      {
        alg: fc.oneof(fc.constantFrom('RS256', 'ES256', 'HS256', 'none', 'PS256'), fc.string()),
        kid: fc.oneof(fc.string(), json),
        typ: json,
        crit: json,
      },
      { requiredKeys: ['alg'] },
    ),
    json,
  );
  const payload = fc.oneof(
    fc.record({
      iss: fc.oneof(fc.constant(ISSUER), json),
      aud: fc.oneof(fc.constant(AUDIENCE), json),
      exp: json,
      nbf: json,
      sub: json,
      scope: json,
    }),
    json,
  );

  it('arbitrary strings are refused with a typed 401, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 400 }), async (token) => {
        const err = await cached.verify(token).catch((e: unknown) => e);
        expect(isOidcError(err) && err.status).toBe(401);
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary JSON headers and payloads, unsigned or signed by an attacker, are refused with a typed 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(header, payload, fc.boolean(), async (h, p, signIt) => {
        const input = `${b64(h)}.${b64(p)}`;
        const token = signIt
          ? signUnchecked(
              attacker.privateKey,
              typeof h === 'object' && h !== null && !Array.isArray(h) ? (h as Record<string, unknown>) : {},
              p,
            )
          : `${input}.${Buffer.from('sig').toString('base64url')}`;
        const err = await cached.verify(token).catch((e: unknown) => e);
        expect(isOidcError(err), String(err)).toBe(true);
        const status = (err as { status: number }).status;
        expect(status === 400 || status === 401 || status === 403).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
