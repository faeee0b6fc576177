import { createHash, sign as cryptoSign, generateKeyPairSync, KeyObject, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { trace } from '@opentelemetry/api';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { isOidcError } from '../src/errors.js';
import { requireClaims as expressClaims, requireScopes as expressScopes } from '../src/express.js';
import { checkClaims, hasClaims, hasScopes } from '../src/guards.js';
import { requireClaims as koaClaims, requireScopes as koaScopes } from '../src/koa.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import type { Verifier, VerifierOptions } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import {
  AUDIENCE,
  b64,
  ISSUER,
  type JwksServer,
  json,
  jwksServer,
  listen,
  makeKey,
  reassemble,
  rejectsWith,
  sign,
  signRaw,
  signUnchecked,
  type TestKey,
} from './helpers.js';

// An independent, adversarial review of @amas/oidc: attack classes that test/attacks.test.ts does not
// cover, through the public API only. Every refusal must be a typed 4xx (a bad token) or 503 (an
// outage), never a crash, a hang, a 500, a fetch the attacker chose, or a cache entry.

// Spans are asserted in independent-review-spans.test.ts; here the API must stay a no-op, so that the
// flood tests below measure the verifier and not an exporter left over by another file.
trace.disable();

let keyA: TestKey;
let ecKey: TestKey;
let attacker: TestKey;
let jwks: JwksServer;
let verifier: Verifier;
let cached: Verifier;

beforeAll(async () => {
  [keyA, ecKey, attacker] = await Promise.all([
    makeKey('RS256', 'key-a'),
    makeKey('ES256', 'key-ec'),
    makeKey('RS256', 'attacker'),
  ]);
  jwks = await jwksServer({ keys: [keyA.publicJwk, ecKey.publicJwk] });
  const base = { issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.jwksUri, jwks: { cooldown: 300 } };
  verifier = createVerifier({ ...base, cache: false });
  cached = createVerifier(base);
  await Promise.all([verifier.warmUp(), cached.warmUp()]);
});
afterAll(async () => {
  await verifier.close();
  await cached.close();
  await jwks.close();
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: 'user-1',
  iat: now(),
  exp: now() + 600,
  ...extra,
});

/** The error a verification ends with, or `undefined` when it succeeds. */
async function failure(v: Verifier, token: string): Promise<unknown> {
  return v.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** Both verifiers (cache off, cache on) refuse the token with this code, a 4xx that does not echo it. */
async function refused(token: string, code: string, v?: Verifier): Promise<void> {
  for (const which of v ? [v] : [verifier, cached]) {
    const err = await failure(which, token);
    expect(isOidcError(err), `an OidcError, got ${String(err)}`).toBe(true);
    if (!isOidcError(err)) return;
    expect(err.code).toBe(code);
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(500);
    const visible = JSON.stringify([err.toJSON(), err.headers]);
    for (const part of token.split('.').filter((p) => p.length >= 8)) expect(visible).not.toContain(part);
  }
}

/** RS256 over the exact header and payload texts given (duplicate members, odd spellings). */
function signTexts(key: TestKey, header: string, payload: string): string {
  const input = `${Buffer.from(header).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
  const signature = cryptoSign('sha256', Buffer.from(input), KeyObject.from(key.privateKey));
  return `${input}.${signature.toString('base64url')}`;
}

/** Rejects with 'hung' if the promise has not settled after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: not settled after ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

describe('JOSE header tricks', () => {
  it('never inflates a zip payload: a DEFLATE bomb under zip: DEF is refused as malformed, promptly', async () => {
    const bomb = deflateRawSync(Buffer.alloc(4 * 1024 * 1024, 0x20)); // 4 MiB of spaces, a few kB deflated
    const input = `${b64({ alg: 'RS256', kid: 'key-a', zip: 'DEF' })}.${bomb.toString('base64url')}`;
    const token = `${input}.${cryptoSign('sha256', Buffer.from(input), KeyObject.from(keyA.privateKey)).toString('base64url')}`;
    expect(token.length).toBeLessThan(8192);
    const started = Date.now();
    await refused(token, 'token_malformed');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('treats zip in a JWS header as the unknown parameter it is: the claims are the signed bytes', async () => {
    const token = signUnchecked(keyA.privateKey, { kid: 'key-a', zip: 'DEF' }, claims({ sub: 'plain' }));
    expect((await verifier.verify(token)).claims.sub).toBe('plain');
  });

  it('refuses an RFC 7797 unencoded payload (b64: false) whether or not crit lists it', async () => {
    const payload = JSON.stringify(claims());
    for (const header of [
      { alg: 'RS256', kid: 'key-a', b64: false },
      { alg: 'RS256', kid: 'key-a', b64: false, crit: ['b64'] },
    ]) {
      const input = `${b64(header)}.${payload}`;
      const signature = cryptoSign('sha256', Buffer.from(input), KeyObject.from(keyA.privateKey));
      await refused(`${input}.${signature.toString('base64url')}`, 'token_malformed');
    }
  });

  it.each(['rs256', 'Rs256', 'RS256 ', ' RS256', 'RS256\u0000', 'RS\u200b256', '\uff32\uff33256', 'RS256\n'])(
    'refuses the alg variant %j even over a genuine RS256 signature',
    async (alg) => {
      const genuine = await sign(keyA);
      const token = signTexts(
        keyA,
        JSON.stringify({ alg, kid: 'key-a', typ: 'at+jwt' }),
        JSON.stringify(claims()),
      );
      await refused(token, 'algorithm_not_allowed');
      await refused(
        reassemble(genuine, { header: { alg, kid: 'key-a', typ: 'at+jwt' } }),
        'algorithm_not_allowed',
      );
    },
  );

  it('reads JSON escapes in the header as jose does: "\\u006eone" is none', async () => {
    const payload = JSON.stringify(claims());
    await refused(signTexts(keyA, '{"alg":"\\u006eone","kid":"key-a"}', payload), 'algorithm_not_allowed');
    await refused(signTexts(keyA, '{"alg":"\\u004eONE","kid":"key-a"}', payload), 'algorithm_not_allowed');
    const escaped = signTexts(keyA, '{"alg":"\\u0052S256","kid":"key-\\u0061"}', payload);
    expect((await verifier.verify(escaped)).header).toEqual({ alg: 'RS256', kid: 'key-a' });
  });

  it('takes the last of duplicate header members, exactly as jose does (no parser differential)', async () => {
    const payload = JSON.stringify(claims());
    // Our parser and jose both see alg none: refused before any key.
    await refused(
      signTexts(keyA, '{"alg":"RS256","kid":"key-a","alg":"none"}', payload),
      'algorithm_not_allowed',
    );
    // Both see kid key-a: it verifies, and the principal says so.
    const ok = signTexts(keyA, '{"alg":"RS256","kid":"attacker","kid":"key-a"}', payload);
    expect((await verifier.verify(ok)).header).toEqual({ alg: 'RS256', kid: 'key-a' });
    // Both see crit: refused.
    await refused(
      signTexts(keyA, '{"alg":"RS256","kid":"key-a","crit":null,"crit":["x"],"x":1}', payload),
      'token_malformed',
    );
  });

  it('takes the last of duplicate payload members: an expired twin of a valid exp is refused', async () => {
    const expiredLast = `${JSON.stringify(claims()).slice(0, -1)},"exp":${now() - 3600}}`;
    await refused(signTexts(keyA, '{"alg":"RS256","kid":"key-a"}', expiredLast), 'token_expired');
    const audLast = `${JSON.stringify(claims({ aud: AUDIENCE })).slice(0, -1)},"aud":"https://other.test"}`;
    await refused(signTexts(keyA, '{"alg":"RS256","kid":"key-a"}', audLast), 'audience_mismatch');
  });

  it('accepts a kid of 256 characters and refuses 257 before looking anything up', async () => {
    await refused(await sign(attacker, {}, { kid: 'k'.repeat(256) }), 'key_not_found');
    const hits = jwks.hits;
    await refused(await sign(attacker, {}, { kid: 'k'.repeat(257) }), 'token_malformed');
    expect(jwks.hits).toBe(hits);
  });

  it.each(['x5t', 'x5t#S256'])(
    'never selects or trusts a key by %s (a thumbprint of the real key, signed by the attacker)',
    async (name) => {
      const thumb = await calculateJwkThumbprint(keyA.publicJwk as JWK, 'sha256');
      // Without kid the one RSA key of the issuer is tried, and the attacker's signature fails on it.
      await refused(await sign(attacker, {}, { kid: undefined, [name]: thumb }), 'signature_invalid');
      await refused(await sign(attacker, {}, { kid: 'key-a', [name]: thumb }), 'signature_invalid');
      await refused(await sign(attacker, {}, { kid: 'attacker', [name]: thumb }), 'key_not_found');
    },
  );

  it('ignores an embedded jwk even when it carries private members', async () => {
    const priv = await exportJWK(attacker.privateKey);
    await refused(await sign(attacker, {}, { kid: 'attacker', jwk: priv }), 'key_not_found');
    await refused(
      await sign(attacker, {}, { kid: 'key-a', jwk: { ...priv, kid: 'key-a' } }),
      'signature_invalid',
    );
  });

  it('refuses a nested JWT (cty: JWT) whose payload is another token', async () => {
    const inner = await sign(keyA);
    const input = `${b64({ alg: 'RS256', kid: 'key-a', cty: 'JWT' })}.${Buffer.from(inner).toString('base64url')}`;
    const signature = cryptoSign('sha256', Buffer.from(input), KeyObject.from(keyA.privateKey));
    await refused(`${input}.${signature.toString('base64url')}`, 'token_malformed');
  });

  it.each([
    ['a trailing dot', (t: string) => `${t}.`],
    ['a leading dot', (t: string) => `.${t}`],
    ['two trailing dots', (t: string) => `${t}..`],
    ['a leading space', (t: string) => ` ${t}`],
    ['a trailing newline', (t: string) => `${t}\n`],
    ['a trailing CRLF', (t: string) => `${t}\r\n`],
    ['the Bearer prefix', (t: string) => `Bearer ${t}`],
    [
      'JWS JSON serialization',
      (t: string) =>
        JSON.stringify({ protected: t.split('.')[0], payload: t.split('.')[1], signature: t.split('.')[2] }),
    ],
    ['a JWE-shaped token (five segments)', (t: string) => `${t}.AAAA.BBBB`],
  ])('refuses a genuine token with %s', async (_name, mangle) => {
    const genuine = await sign(keyA);
    await cached.verify(genuine); // cached: a mangled copy must not find it
    const err = await failure(cached, mangle(genuine));
    expect(isOidcError(err) && err.status).toBe(401);
    expect((err as { code: string }).code).toMatch(/^(token_malformed|signature_invalid)$/);
  });

  it('refuses a genuine RS256 token whose signature is re-encoded non-canonically (malleability)', async () => {
    const genuine = await sign(keyA); // 256-byte signature: 342 characters, 4 unused bits at the end
    await cached.verify(genuine);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = genuine.at(-1) as string;
    const twin = `${genuine.slice(0, -1)}${alphabet[alphabet.indexOf(last) | 1]}`;
    expect(twin).not.toBe(genuine);
    expect(Buffer.from(twin.split('.')[2] as string, 'base64url')).toEqual(
      Buffer.from(genuine.split('.')[2] as string, 'base64url'),
    );
    await refused(twin, 'token_malformed');
  });
});

describe('challenges', () => {
  it('every 401 challenge carries the configured realm, whichever part of the verifier refused', async () => {
    const realm = 'tools';
    const bySource: Verifier[] = [
      createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.jwksUri, realm }),
      createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [keyA.publicJwk], realm }),
      createVerifier({
        issuer: ISSUER,
        audience: AUDIENCE,
        secret: 's'.repeat(64),
        algorithms: ['HS256', 'HS384'],
        realm,
      }),
    ];
    const hs384 = `${b64({ alg: 'HS384', kid: 'x' })}.${b64(claims())}.${'A'.repeat(64)}`;
    for (const v of bySource) {
      for (const token of [
        'garbage',
        await sign(attacker, {}, { kid: 'nobody' }),
        await sign(attacker, {}, { kid: 'key-a' }),
        await sign(keyA, { exp: now() - 60 }),
        await sign(keyA, { aud: 'https://other.test' }),
        hs384,
      ]) {
        const err = await failure(v, token);
        expect(isOidcError(err) && err.status).toBe(401);
        expect((err as { headers: Record<string, string> }).headers['WWW-Authenticate']).toMatch(
          /^Bearer realm="tools", error="invalid_token"/,
        );
      }
      await v.close();
    }
  });
});

describe('RFC 9068 typ', () => {
  let idp: TestIssuer;
  let strict: Verifier;
  beforeAll(async () => {
    idp = await createTestIssuer({ audience: AUDIENCE });
    strict = createVerifier({ ...idp.verifierOptions(), profile: 'rfc9068' });
    await strict.warmUp();
  });
  afterAll(async () => {
    await strict.close();
    await idp.close();
  });

  it.each(['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+JWT'])(
    'accepts typ %j (media types are case-insensitive, application/ may be omitted)',
    async (typ) => {
      expect((await strict.verify(await idp.mint({}, { typ }))).header.typ).toBe(typ);
    },
  );

  it.each([
    'JWT',
    'jwt',
    'at+jwt ',
    ' at+jwt',
    'at+jwt\u0000',
    'at+jwt; charset=utf-8',
    'application/jwt',
    'dpop+jwt',
    'logout+jwt',
    'secevent+jwt',
    'application/at+jwt+jwt',
    'x-at+jwt',
    'at-jwt',
  ])('refuses typ %j with 401 token_type_invalid', async (typ) => {
    await refused(await idp.mint({}, { typ }), 'token_type_invalid', strict);
  });

  it.each([
    ['a number', 1],
    ['a list', ['at+jwt']],
    ['an object', { value: 'at+jwt' }],
    ['null', null],
  ])('refuses a typ that is %s as malformed', async (_name, typ) => {
    await refused(await idp.mint({}, { header: { typ } }), 'token_malformed', strict);
  });

  it('refuses each missing RFC 9068 claim by name', async () => {
    for (const name of ['sub', 'client_id', 'iat', 'jti', 'exp']) {
      const err = await failure(strict, await idp.mint({}, { omit: [name] }));
      expect(err).toMatchObject({ code: 'claim_invalid', status: 401 });
    }
  });
});

describe('key-set poisoning', () => {
  let server: JwksServer;
  beforeAll(async () => {
    server = await jwksServer({ keys: [] });
  });
  afterAll(() => server.close());

  /** A verifier of a JWKS holding keyA and `extra`, warmed up. */
  async function over(...extra: Record<string, unknown>[]): Promise<Verifier> {
    server.serve({ keys: [keyA.publicJwk, ...(extra as JWK[])] });
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: server.jwksUri,
      jwks: { cooldown: 300 },
    });
    await v.warmUp();
    return v;
  }

  it.each([
    ['key_ops without verify', { key_ops: ['sign'] }],
    ['key_ops for encryption', { key_ops: ['encrypt', 'wrapKey'] }],
    ['key_ops as a string', { key_ops: 'verify' }],
    ['use "enc"', { use: 'enc' }],
    ['use "sig " (not exactly sig)', { use: 'sig ' }],
  ])('never verifies with a key marked %s', async (_name, marks) => {
    const other = await makeKey('RS256', 'marked');
    const v = await over({ ...other.publicJwk, ...marks });
    expect(v.health().issuers[0]?.keys).toBe(1);
    await refused(await sign(other), 'key_not_found', v);
    await v.close();
  });

  it('never verifies with a key whose kty does not fit the alg (an RSA key labelled ES256)', async () => {
    const other = await makeKey('RS256', 'mislabelled');
    const v = await over({ ...other.publicJwk, alg: 'ES256' });
    await refused(await sign(other), 'key_not_found', v);
    await refused(
      reassemble(await sign(other), { header: { alg: 'ES256', kid: 'mislabelled' } }),
      'key_not_found',
      v,
    );
    await v.close();
  });

  it('never verifies ES256 with a P-384 key, nor with secp256k1 or X25519 keys', async () => {
    const p384 = await makeKey('ES384', 'p384');
    const k1 = { kty: 'EC', crv: 'secp256k1', kid: 'k1', x: 'A'.repeat(43), y: 'A'.repeat(43) };
    const x25519 = { kty: 'OKP', crv: 'X25519', kid: 'x25519', x: 'A'.repeat(43) };
    const v = await over({ ...p384.publicJwk, alg: undefined }, k1, x25519);
    expect(v.health().issuers[0]?.keys).toBe(2);
    const es256 = await makeKey('ES256', 'p384');
    await refused(await sign(es256), 'key_not_found', v);
    await refused(await sign(es256, {}, { kid: 'k1' }), 'key_not_found', v);
    await refused(await sign(es256, {}, { kid: 'x25519' }), 'key_not_found', v);
    await v.close();
  });

  it('never verifies with an RSA key of public exponent 1 (anyone could forge its signatures)', async () => {
    const n = keyA.publicJwk.n as string;
    const header = b64({ alg: 'RS256', kid: 'e1', typ: 'at+jwt' });
    const payload = b64(claims({ sub: 'forged-admin' }));
    const digest = createHash('sha256').update(`${header}.${payload}`).digest();
    const t = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), digest]);
    const em = Buffer.concat([
      Buffer.from([0, 1]),
      Buffer.alloc(256 - t.length - 3, 0xff),
      Buffer.from([0]),
      t,
    ]);
    const forged = `${header}.${payload}.${em.toString('base64url')}`; // s = EM, and s^1 mod n = EM
    const v = await over({ kty: 'RSA', n, e: 'AQ', kid: 'e1', alg: 'RS256' });
    expect(v.health().issuers[0]?.keys).toBe(1);
    await refused(forged, 'key_not_found', v);
    await v.close();
    expect(() =>
      createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [{ kty: 'RSA', n, e: 'AQ' }] }),
    ).toThrow(/keys\[0\]/);
  });

  it('never verifies with an RSA key whose public exponent is even', async () => {
    const v = await over({ kty: 'RSA', n: keyA.publicJwk.n, e: 'AQAA', kid: 'even', alg: 'RS256' });
    expect(v.health().issuers[0]?.keys).toBe(1);
    await v.close();
  });

  it('never keeps a 1024-bit RSA key padded with zero octets to look like 2048 bits', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = weak.publicKey.export({ format: 'jwk' });
    const n = Buffer.concat([Buffer.alloc(128), Buffer.from(jwk.n as string, 'base64url')]).toString(
      'base64url',
    );
    expect(n.length).toBeGreaterThanOrEqual(342);
    const v = await over({ kty: 'RSA', n, e: jwk.e, kid: 'padded', alg: 'RS256' });
    expect(v.health().issuers[0]?.keys).toBe(1);
    await refused(signUnchecked(weak.privateKey, { kid: 'padded' }, claims()), 'key_not_found', v);
    await v.close();
  });

  it('with duplicate kids, each key verifies its own tokens, and removing one drops only its cached tokens', async () => {
    const twin = await makeKey('RS256', 'key-a');
    const v = await over(twin.publicJwk);
    const byA = await sign(keyA);
    const byTwin = await sign(twin);
    const pA = await v.verify(byA);
    await v.verify(byTwin);
    await refused(await sign(attacker, {}, { kid: 'key-a' }), 'signature_invalid', v);
    await v.close();
    // The twin leaves the JWKS: a fresh verifier with a short cache proves the cached entry goes too.
    server.serve({ keys: [keyA.publicJwk, twin.publicJwk] });
    const short = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: server.jwksUri,
      jwks: { cacheTtl: 1, refreshAhead: 0.5, cooldown: 0 },
    });
    const first = await short.verify(byTwin);
    expect(await short.verify(byTwin)).toBe(first);
    server.serve({ keys: [keyA.publicJwk] });
    await new Promise((r) => setTimeout(r, 1100));
    await short.verify(byA); // triggers the refresh
    await new Promise((r) => setTimeout(r, 100));
    await rejectsWith(short.verify(byTwin), 'signature_invalid', 401);
    expect((await short.verify(byA)).subject).toBe(pA.subject);
    await short.close();
  });

  it('refuses a gzip bomb JWKS by its inflated size, and keeps serving 503 rather than guessing', async () => {
    const bomb = gzipSync(
      Buffer.concat([Buffer.from('{"keys":['), Buffer.alloc(32 * 1024 * 1024, 0x20), Buffer.from(']}')]),
    );
    expect(bomb.length).toBeLessThan(100_000);
    server.handle((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(bomb);
    });
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri });
    const before = process.memoryUsage().rss;
    await rejectsWith(v.verify(await sign(keyA)), 'jwks_unavailable', 503);
    expect(v.health().issuers[0]?.lastError?.reason).toMatch(/exceeds/);
    expect(process.memoryUsage().rss - before).toBeLessThan(24 * 1024 * 1024);
    await v.close();
  });

  it('is not fooled by __proto__ in a JWKS document', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"__proto__":{"keys":[${JSON.stringify(keyA.publicJwk)}]}}`);
    });
    const v = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri });
    await rejectsWith(v.verify(await sign(keyA)), 'jwks_unavailable', 503);
    expect(v.health().issuers[0]?.lastError?.reason).toMatch(/not a JWKS/);
    await v.close();
  });
});

describe('claims', () => {
  it('accepts an aud list naming this API among other strings, and reports them all', async () => {
    const p = await verifier.verify(
      await sign(keyA, { aud: ['https://a.test', AUDIENCE, 'https://b.test'] }),
    );
    expect(p.audience).toEqual(['https://a.test', AUDIENCE, 'https://b.test']);
  });

  it.each([
    ['a number', 42],
    ['null', null],
    ['an object', { aud: AUDIENCE }],
    ['a nested list', [AUDIENCE]],
  ])('refuses an aud list that names this API next to %s (aud holds strings only)', async (_name, junk) => {
    await refused(await sign(keyA, { aud: [AUDIENCE, junk] }), 'claim_invalid');
  });

  it.each([
    ['a number', 1],
    ['true', true],
    ['a nested list holding it', [[AUDIENCE]]],
  ])('refuses an aud that is %s', async (_name, aud) => {
    await refused(await sign(keyA, { aud }), 'audience_mismatch');
  });

  it.each([AUDIENCE.toUpperCase(), `${AUDIENCE}/`, ` ${AUDIENCE}`, `${AUDIENCE}\u0000`])(
    'refuses the aud variant %j',
    async (aud) => {
      await refused(await sign(keyA, { aud }), 'audience_mismatch');
    },
  );

  it('honours fractional exp and nbf, with and without the cache', async () => {
    const strict = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [keyA.publicJwk],
      clockTolerance: 0,
    });
    await refused(await sign(keyA, { exp: now() - 0.5 }), 'token_expired', strict);
    await refused(await sign(keyA, { nbf: now() + 30.5 }), 'token_not_yet_valid', strict);
    const exp = now() + 600.25;
    const token = await sign(keyA, { exp });
    expect((await strict.verify(token)).expiresAt).toBe(exp);
    expect((await strict.verify(token)).expiresAt).toBe(exp);
  });

  it.each([
    ['exp 0', { exp: 0 }, 'token_expired'],
    ['a negative exp', { exp: -1 }, 'token_expired'],
    ['exp -1e300', { exp: -1e300 }, 'token_expired'],
    ['nbf 1e300', { nbf: 1e300 }, 'token_not_yet_valid'],
    ['exp true', { exp: true }, 'claim_invalid'],
    ['exp null', { exp: null }, 'claim_invalid'],
    ['exp as a list', { exp: [now() + 600] }, 'claim_invalid'],
    ['iat as a string', { iat: 'now' }, 'claim_invalid'],
    ['nbf null', { nbf: null }, 'claim_invalid'],
  ])('refuses %s', async (_name, extra, code) => {
    await refused(await sign(keyA, extra), code);
  });

  it.each([
    ['exp', '"exp":-1e400'],
    ['nbf', '"nbf":-1e400'],
    ['iat', '"iat":1e400'],
  ])('refuses an infinite %s written as a JSON number', async (_name, member) => {
    const payload = `${JSON.stringify(claims()).slice(0, -1)},${member}}`;
    const err = await failure(verifier, await signRaw(keyA, { kid: 'key-a' }, payload));
    expect(err).toMatchObject({ status: 401 });
    expect((err as { code: string }).code).toMatch(/^(claim_invalid|token_expired)$/);
  });

  it('refuses an iat beyond maxTokenAge in both directions, and 1e300', async () => {
    const aged = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [keyA.publicJwk],
      maxTokenAge: 60,
    });
    await refused(await sign(keyA, { iat: 1e300 }), 'token_not_yet_valid', aged);
    await refused(await sign(keyA, { iat: -1e300 }), 'token_expired', aged);
    await refused(await sign(keyA, { iat: undefined }), 'claim_invalid', aged);
  });

  it('is not fooled by __proto__ and constructor claims: no pollution, no claim, no scope, no validator input', async () => {
    const seen: unknown[] = [];
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [keyA.publicJwk],
      claimValidators: {
        toString: (value: unknown) => {
          seen.push(value);
          return true;
        },
      },
    });
    const payload = `${JSON.stringify(claims()).slice(0, -1)},"__proto__":{"admin":true,"scope":"root","toString":"x"},"constructor":{"prototype":{"admin":true}}}`;
    const p = await v.verify(await signRaw(keyA, { kid: 'key-a' }, payload));
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect((p.claims as Record<string, unknown>).admin).toBeUndefined();
    expect(p.scopes).toEqual([]);
    expect(hasClaims(p, { admin: true })).toBe(false);
    expect(hasClaims(p, (q) => (q.claims as Record<string, unknown>).admin === true)).toBe(false);
    expect(seen).toEqual([undefined]);
    expect(Object.getPrototypeOf(p.claims)).toBe(Object.prototype);
  });

  it('does not count inherited members as required claims', async () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [keyA.publicJwk],
      requiredClaims: ['toString', 'constructor', '__proto__'],
    });
    await refused(await sign(keyA), 'claim_invalid', v);
  });

  it('a zod claims schema never sees __proto__ as a claim', async () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [keyA.publicJwk],
      claimsSchema: z.looseObject({ sub: z.string(), admin: z.boolean().optional() }),
    });
    const payload = `${JSON.stringify(claims()).slice(0, -1)},"__proto__":{"admin":true}}`;
    const p = await v.verify(await signRaw(keyA, { kid: 'key-a' }, payload));
    expect(p.claims.admin).toBeUndefined();
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });
});

describe('multi-tenant resolver abuse', () => {
  let tenant: TestIssuer;
  beforeAll(async () => {
    tenant = await createTestIssuer({ audience: AUDIENCE, path: '/t/acme' });
  });
  afterAll(() => tenant.close());

  it('a resolver that never answers costs a 503 within the fetch timeout, not a hung request', async () => {
    let calls = 0;
    let hang = true;
    const v = createVerifier({
      issuer: (iss) => {
        calls++;
        return hang ? new Promise<never>(() => {}) : iss === tenant.issuer;
      },
      audience: AUDIENCE,
      jwks: { timeout: 0.3 },
      resolverCache: { failureCooldown: 0.5 },
    });
    const token = await tenant.mint();
    const started = Date.now();
    const results = await within(Promise.allSettled(Array.from({ length: 20 }, () => v.verify(token))), 5000);
    expect(Date.now() - started).toBeLessThan(3000);
    for (const r of results)
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'discovery_failed', status: 503 } });
    expect(calls).toBe(1);
    // Once the tenant database answers again, the same issuer is asked again (once
    // resolverCache.failureCooldown has passed) and verifies.
    hang = false;
    await within(
      (async () => {
        while ((await v.verify(token).catch(() => undefined))?.issuer !== tenant.issuer)
          await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
    );
    expect(calls).toBe(2);
    await v.close();
  });

  it('asks the resolver once for a burst of tokens naming the same unknown issuer', async () => {
    let calls = 0;
    const v = createVerifier({
      issuer: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 50));
        return false;
      },
      audience: AUDIENCE,
    });
    const token = await tenant.mint({ iss: 'https://unknown.test/' });
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => v.verify(token)));
    for (const r of results) expect(r).toMatchObject({ reason: { code: 'issuer_mismatch', status: 401 } });
    expect(calls).toBe(1);
    await v.close();
  });

  it.each([
    ['plain http on a public host', 'http://169.254.169.254/latest/'],
    ['credentials in the URL', 'https://user:pass@login.example.com/'],
    ['a file: URL', 'file:///etc/passwd'],
    ['a data: URL', 'data:application/json,{}'],
    ['not a URL', 'attacker'],
  ])('a permissive resolver still never fetches an iss that is %s', async (_name, iss) => {
    const fetched: string[] = [];
    const v = createVerifier({
      issuer: () => true,
      audience: AUDIENCE,
      fetch: async (input) => {
        fetched.push(String(input));
        throw new Error('no network in this test');
      },
    });
    const err = await failure(v, await tenant.mint({ iss }));
    expect(isOidcError(err)).toBe(true);
    expect((err as { status: number }).status).toBeGreaterThanOrEqual(400);
    expect(fetched).toEqual([]);
    await v.close();
  });

  it("never lets one tenant's answer vouch for another issuer", async () => {
    tenant.resetRequests();
    const v = createVerifier({ issuer: () => ({ issuer: tenant.issuer }), audience: AUDIENCE });
    await rejectsWith(
      v.verify(await tenant.mint({ iss: `${tenant.issuer}/../other` })),
      'discovery_failed',
      503,
    );
    expect(tenant.requests.discovery + tenant.requests.jwks).toBe(0);
    await v.close();
  });
});

describe('discovery documents that lie', () => {
  let counts: Record<string, number>;
  let doc: (origin: string) => unknown;
  let server: Awaited<ReturnType<typeof listen>>;
  let key: TestKey;

  beforeAll(async () => {
    key = await makeKey('RS256', 'disc');
    counts = {};
    server = await listen((req, res) => {
      const path = (req.url ?? '').split('?')[0] as string;
      counts[path] = (counts[path] ?? 0) + 1;
      if (path === '/.well-known/openid-configuration') {
        const d = doc(`http://127.0.0.1:${req.socket.localPort}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(typeof d === 'string' ? d : JSON.stringify(d));
      }
      if (path === '/jwks') return json(res, 200, { keys: [key.publicJwk] });
      json(res, 404, {});
    });
  });
  afterAll(() => server.close());

  async function discovered(extra: Partial<VerifierOptions> = {}): Promise<{ v: Verifier; token: string }> {
    counts = {};
    const v = createVerifier({ issuer: server.url, audience: AUDIENCE, jwks: { timeout: 0.5 }, ...extra });
    const token = await sign(key, { iss: server.url });
    return { v, token };
  }

  it('sanity: an honest document verifies', async () => {
    doc = (origin) => ({ issuer: origin, jwks_uri: `${origin}/jwks` });
    const { v, token } = await discovered();
    expect((await v.verify(token)).issuer).toBe(server.url);
    await v.close();
  });

  it.each([
    ['a trailing slash', (o: string) => `${o}/`],
    ['another case', (o: string) => o.toUpperCase()],
    ['another port', (o: string) => o.replace(/:\d+$/, ':1')],
    ['a list', (o: string) => [o]],
    ['nothing', () => undefined],
  ])('refuses a document whose issuer differs by %s, and fetches no JWKS', async (_name, issuerOf) => {
    doc = (origin) => ({ issuer: issuerOf(origin), jwks_uri: `${origin}/jwks` });
    const { v, token } = await discovered();
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(counts['/jwks']).toBeUndefined();
    expect(v.health().issuers[0]?.lastError?.reason).toMatch(/different issuer/);
    await v.close();
  });

  it.each([
    ['plain http on another host', 'http://keys.attacker.test/jwks'],
    ['credentials', 'https://user:secret@keys.example.com/jwks'],
    ['a file: URL', 'file:///etc/passwd'],
    ['not a string', 42],
  ])('refuses a discovered jwks_uri with %s, without fetching it', async (_name, jwksUri) => {
    doc = (origin) => ({ issuer: origin, jwks_uri: jwksUri });
    const fetched: string[] = [];
    const { v, token } = await discovered({
      fetch: (input, init) => {
        fetched.push(String(input));
        return fetch(input, init);
      },
    });
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(fetched).toEqual([`${server.url}/.well-known/openid-configuration`]);
    const reason = v.health().issuers[0]?.lastError?.reason ?? '';
    expect(reason).not.toContain('secret');
    await v.close();
  });

  describe('an https issuer (served through a custom fetch)', () => {
    const issuer = 'https://login.example.test';
    function https(jwksUri: string, fetched: string[]): typeof fetch {
      return async (input, init) => {
        const url = String(input);
        fetched.push(url);
        if (url === `${issuer}/.well-known/openid-configuration`)
          return Response.json({ issuer, jwks_uri: jwksUri });
        if (url === 'https://keys.example.net/jwks') return Response.json({ keys: [key.publicJwk] });
        return fetch(input, init);
      };
    }

    it('refuses a discovered jwks_uri that downgrades to plain http on loopback, without fetching it', async () => {
      const fetched: string[] = [];
      counts = {};
      const v = createVerifier({ issuer, audience: AUDIENCE, fetch: https(`${server.url}/jwks`, fetched) });
      await rejectsWith(v.verify(await sign(key, { iss: issuer })), 'discovery_failed', 503);
      expect(fetched).toEqual([`${issuer}/.well-known/openid-configuration`]);
      expect(counts['/jwks']).toBeUndefined();
      expect(v.health().issuers[0]?.lastError?.reason).toMatch(/downgrades https to http/);
      await v.close();
    });

    it('follows it when allowInsecureHttp says so', async () => {
      const fetched: string[] = [];
      const v = createVerifier({
        issuer,
        audience: AUDIENCE,
        allowInsecureHttp: true,
        fetch: https(`${server.url}/jwks`, fetched),
      });
      expect((await v.verify(await sign(key, { iss: issuer }))).issuer).toBe(issuer);
      await v.close();
    });

    it('follows an https jwks_uri on another host, as OIDC Discovery allows', async () => {
      const fetched: string[] = [];
      const v = createVerifier({
        issuer,
        audience: AUDIENCE,
        fetch: https('https://keys.example.net/jwks', fetched),
      });
      expect((await v.verify(await sign(key, { iss: issuer }))).issuer).toBe(issuer);
      expect(fetched).toEqual([
        `${issuer}/.well-known/openid-configuration`,
        'https://keys.example.net/jwks',
      ]);
      await v.close();
    });
  });

  it('is not fooled by __proto__ holding jwks_uri', async () => {
    doc = (origin) => `{"issuer":${JSON.stringify(origin)},"__proto__":{"jwks_uri":"${origin}/jwks"}}`;
    const { v, token } = await discovered();
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(counts['/jwks']).toBeUndefined();
    await v.close();
  });
});

describe('discovery and JWKS that stall, bloat or redirect', () => {
  let idp: TestIssuer;
  let elsewhere: TestIssuer;
  beforeAll(async () => {
    [idp, elsewhere] = await Promise.all([
      createTestIssuer({ audience: AUDIENCE }),
      createTestIssuer({ audience: AUDIENCE }),
    ]);
  });
  afterAll(async () => {
    await idp.close();
    await elsewhere.close();
  });

  it('never lets discovery widen the algorithms (none, HS256 listed) and refuses what it narrows away', async () => {
    const server = await listen((req, res) => {
      const origin = `http://127.0.0.1:${req.socket.localPort}`;
      if (req.url === '/.well-known/openid-configuration') {
        return json(res, 200, {
          issuer: origin,
          jwks_uri: `${origin}/jwks`,
          access_token_signing_alg_values_supported: ['none', 'HS256'],
        });
      }
      json(res, 200, {
        keys: [
          keyA.publicJwk,
          { kty: 'oct', kid: 'oct', k: Buffer.from('s'.repeat(32)).toString('base64url') },
        ],
      });
    });
    const v = createVerifier({ issuer: server.url, audience: AUDIENCE });
    await v.warmUp();
    await rejectsWith(v.verify(await sign(keyA, { iss: server.url })), 'algorithm_not_allowed', 401);
    const none = `${b64({ alg: 'none' })}.${b64(claims({ iss: server.url }))}.`;
    await rejectsWith(v.verify(none), 'algorithm_not_allowed', 401);
    await v.close();
    await server.close();
  });

  it.each([
    ['slow', { delayMs: 10_000 }],
    ['huge', {}],
    ['garbage', {}],
    ['error', { status: 404 }],
  ] as const)('answers 503 promptly when discovery is %s at a cold start', async (mode, options) => {
    idp.fail(mode, { target: 'discovery', ...options });
    const v = createVerifier({ ...idp.verifierOptions(), jwks: { timeout: 0.5 } });
    const started = Date.now();
    await rejectsWith(within(v.verify(await idp.mint()), 5000), 'discovery_failed', 503);
    expect(Date.now() - started).toBeLessThan(3000);
    idp.recover();
    await v.close();
  });

  it('never follows a discovery redirect, not even to a real issuer', async () => {
    elsewhere.resetRequests();
    idp.fail('redirect', { target: 'discovery', location: elsewhere.discoveryUri });
    const v = createVerifier(idp.verifierOptions());
    await rejectsWith(v.verify(await idp.mint()), 'discovery_failed', 503);
    expect(elsewhere.requests).toEqual({ discovery: 0, jwks: 0, token: 0 });
    idp.recover();
    await v.close();
  });

  it('a JWKS that never answers: 300 concurrent cold requests all get 503 within the timeout, from one fetch', async () => {
    let hits = 0;
    const server = await listen(() => {
      hits++; // never answers
    });
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${server.url}/jwks`,
      jwks: { timeout: 0.5, cooldown: 60 },
    });
    const token = await sign(keyA);
    const started = Date.now();
    const results = await within(
      Promise.allSettled(Array.from({ length: 300 }, () => v.verify(token))),
      10_000,
    );
    expect(Date.now() - started).toBeLessThan(4000);
    for (const r of results) expect(r).toMatchObject({ reason: { code: 'jwks_unavailable', status: 503 } });
    expect(hits).toBe(1);
    // Within the cooldown, more requests fail fast instead of queueing on the dead host.
    const again = Date.now();
    await rejectsWith(v.verify(token), 'jwks_unavailable', 503);
    expect(Date.now() - again).toBeLessThan(400);
    expect(hits).toBe(1);
    await v.close();
    await server.close();
  });

  it('a JWKS that trickles its body byte by byte is cut at the timeout', async () => {
    const body = JSON.stringify({ keys: [keyA.publicJwk] });
    const server = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      let i = 0;
      const timer = setInterval(() => {
        if (res.destroyed || i >= body.length) {
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(body[i++] as string);
      }, 20);
    });
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${server.url}/jwks`,
      jwks: { timeout: 0.5 },
    });
    const started = Date.now();
    await rejectsWith(within(v.verify(await sign(keyA)), 5000), 'jwks_unavailable', 503);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(v.health().issuers[0]?.lastError?.reason).toMatch(/timed out/);
    await v.close();
    await server.close();
  });

  it('a custom fetch that ignores the abort signal still times out (503), instead of hanging every request', async () => {
    const v = createVerifier({
      ...idp.verifierOptions(),
      jwks: { timeout: 0.3 },
      fetch: () => new Promise<Response>(() => {}),
    });
    const started = Date.now();
    await rejectsWith(within(v.verify(await idp.mint()), 5000), 'discovery_failed', 503);
    expect(Date.now() - started).toBeLessThan(3000);
    await rejectsWith(within(v.warmUp(), 5000), 'discovery_failed', 503);
    await v.close();
  });

  it('a custom fetch whose body never ends still times out', async () => {
    const stalled = () =>
      Promise.resolve(
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode('{"keys":['));
            },
          }),
          { status: 200, headers: { 'content-type': 'application/json' } },
        ),
      );
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: 'https://keys.example.com/jwks',
      jwks: { timeout: 0.3 },
      fetch: stalled,
    });
    await rejectsWith(within(v.verify(await sign(keyA)), 5000), 'jwks_unavailable', 503);
    await v.close();
  });

  it('close() releases requests waiting on a hung JWKS or a hung resolver at once, with 503', async () => {
    const server = await listen(() => {}); // never answers
    const hungJwks = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${server.url}/jwks`,
      jwks: { timeout: 30 },
    });
    const hungResolver = createVerifier({
      issuer: () => new Promise<never>(() => {}),
      audience: AUDIENCE,
      jwks: { timeout: 30 },
    });
    const waiting = [
      ...Array.from({ length: 10 }, async () => hungJwks.verify(await sign(keyA))),
      ...Array.from({ length: 10 }, async () => hungResolver.verify(await sign(keyA))),
    ];
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await Promise.all([hungJwks.close(), hungResolver.close()]);
    const results = await within(Promise.allSettled(waiting), 5000);
    expect(Date.now() - started).toBeLessThan(1000);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ status: 503 });
    }
    await server.close();
  });

  it('while a refetch for an unknown kid hangs, tokens of known keys are answered at once', async () => {
    let stall = false;
    let hits = 0;
    const server = await listen((_req, res) => {
      hits++;
      if (!stall) json(res, 200, { keys: [keyA.publicJwk] });
    });
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${server.url}/jwks`,
      cache: false,
      jwks: { timeout: 2, cooldown: 0 },
    });
    await v.warmUp();
    const forged = await Promise.all(
      Array.from({ length: 100 }, () => sign(attacker, {}, { kid: randomUUID() })),
    );
    const known = await Promise.all(Array.from({ length: 20 }, () => sign(keyA)));
    stall = true;
    const unknown = Promise.allSettled(forged.map((t) => v.verify(t)));
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await Promise.all(known.map((t) => v.verify(t)));
    expect(Date.now() - started).toBeLessThan(1000);
    const results = await within(unknown, 5000);
    for (const r of results) expect(r.status).toBe('rejected');
    expect(hits).toBeLessThanOrEqual(3);
    await v.close();
    await server.close();
  });
});

describe('the verified-token cache under abuse', () => {
  it('never caches a token that fails after its signature verified (expired, audience, validator, schema)', async () => {
    let validations = 0;
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [ecKey.publicJwk],
      claimValidators: {
        tenant: (value) => {
          validations++;
          return value !== 'blocked';
        },
      },
      claimsSchema: z.looseObject({ level: z.number().max(10).optional() }),
    });
    const cases: Array<[string, string]> = [
      [await sign(ecKey, { exp: now() - 60 }), 'token_expired'],
      [await sign(ecKey, { aud: 'https://other.test' }), 'audience_mismatch'],
      [await sign(ecKey, { tenant: 'blocked' }), 'claim_invalid'],
      [await sign(ecKey, { level: 11 }), 'claim_invalid'],
    ];
    for (const [token, code] of cases) {
      await rejectsWith(v.verify(token), code, 401);
      await rejectsWith(v.verify(token), code, 401);
    }
    // The validator ran for both attempts of the two tokens that reached it: nothing was cached.
    expect(validations).toBe(4);
    const good = await sign(ecKey, { tenant: 'acme' });
    const p = await v.verify(good);
    expect(await v.verify(good)).toBe(p);
    expect(validations).toBe(5);
    await v.close();
  });

  it('100 000 distinct invalid tokens neither enter the cache nor grow the heap', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: jwks.jwksUri,
      jwks: { cooldown: 300 },
      cache: { maxEntries: 1000 },
    });
    await v.warmUp();
    const fetches = jwks.hits;
    const genuine = await sign(ecKey);
    const principal = await v.verify(genuine);
    const payload = b64(claims());
    const sig = Buffer.alloc(256, 7).toString('base64url');
    const forged = (i: number): string => {
      switch (i % 4) {
        case 0:
          return `${b64({ alg: 'RS256', kid: `forged-${i}` })}.${payload}.${sig}`; // unknown kid
        case 1:
          return `${b64({ alg: 'RS256', kid: 'key-a' })}.${b64(claims({ iss: `https://evil.test/${i}` }))}.${sig}`;
        case 2:
          return `${b64({ alg: 'RS256', kid: 'key-a', n: i })}.${payload}.${sig}=`; // malformed
        default:
          return i % 100 === 3
            ? `${b64({ alg: 'RS256', kid: 'key-a', n: i })}.${payload}.${sig}` // bad signature, verified
            : `${b64({ alg: 'ES256', kid: `k${i}`, typ: 'at+jwt' })}.${payload}.${sig}`;
      }
    };
    const statuses = new Set<number>();
    const flood = async (from: number, to: number) => {
      for (let start = from; start < to; start += 2000) {
        const batch = await Promise.allSettled(
          Array.from({ length: 2000 }, (_, k) => v.verify(forged(start + k))),
        );
        for (const r of batch)
          statuses.add(r.status === 'rejected' ? (r.reason as { status: number }).status : 200);
      }
    };
    await flood(0, 10_000); // warms up the JIT and fills the bounded negative kid cache
    gc();
    const before = process.memoryUsage().heapUsed;
    await flood(10_000, 110_000);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect([...statuses]).toEqual([401]);
    expect(grown).toBeLessThan(4 * 1024 * 1024);
    // Had any of them been cached, 1000 entries would have pushed the genuine one out.
    expect(await v.verify(genuine)).toBe(principal);
    expect(jwks.hits - fetches).toBe(0);
    await v.close();
  });
});

describe('keys given as options', () => {
  it.each([
    ['an RSA key with e = 1', () => ({ kty: 'RSA', n: keyA.publicJwk.n, e: 'AQ' })],
    ['an RSA key with an even e', () => ({ kty: 'RSA', n: keyA.publicJwk.n, e: 'AQAA' })],
    [
      'a padded 1024-bit RSA key',
      () => {
        const jwk = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
        return {
          kty: 'RSA',
          e: jwk.e,
          n: Buffer.concat([Buffer.alloc(128), Buffer.from(jwk.n as string, 'base64url')]).toString(
            'base64url',
          ),
        };
      },
    ],
  ])('refuses %s at the factory, naming the key', (_name, jwk) => {
    expect(() =>
      createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [keyA.publicJwk, jwk()] }),
    ).toThrow(/keys\[1\]/);
  });
});

describe('authorization guards that a misconfiguration must not open', () => {
  let p: Awaited<ReturnType<Verifier['verify']>>;
  beforeAll(async () => {
    p = await verifier.verify(await sign(keyA, { scope: 'tools:read', roles: ['reader'] }));
  });

  it.each([
    ['undefined (an unset environment variable)', undefined],
    ['{ equals: undefined }', { equals: undefined }],
    ['{ oneOf: [undefined] }', { oneOf: [undefined] }],
  ])('a requirement of %s is never met by a claim the token lacks', (_name, requirement) => {
    const requirements = { tenant: requirement } as unknown as Parameters<typeof hasClaims>[1];
    expect(hasClaims(p, requirements)).toBe(false);
    expect(() => checkClaims(p, requirements)).toThrow(
      expect.objectContaining({ code: 'insufficient_scope' }),
    );
  });

  it('any of no scopes is not met; all of no scopes is', () => {
    expect(hasScopes(p, [], { mode: 'any' })).toBe(false);
    expect(hasScopes(p, [])).toBe(true);
  });

  it.each([
    ['an empty list', []],
    ['an empty scope', ''],
    ['a list with an empty scope', ['tools:read', '']],
    ['undefined', undefined],
    ['a list with a non-string', ['tools:read', 7]],
  ])('the Express and Koa scope guards refuse %s when created, naming the guard', (_name, scopes) => {
    for (const guard of [expressScopes, koaScopes]) {
      expect(() => guard(scopes as string[])).toThrow(
        expect.objectContaining({
          code: 'config_invalid',
          message: expect.stringContaining('requireScopes'),
        }),
      );
    }
  });

  it.each([
    ['no requirement at all', {}],
    ['undefined', undefined],
    ['a requirement that is undefined', { tenant: undefined }],
  ])('the Express and Koa claim guards refuse %s when created, naming the guard', (_name, requirements) => {
    for (const guard of [expressClaims, koaClaims]) {
      expect(() => guard(requirements as unknown as Parameters<typeof guard>[0])).toThrow(
        expect.objectContaining({
          code: 'config_invalid',
          message: expect.stringContaining('requireClaims'),
        }),
      );
    }
  });
});
