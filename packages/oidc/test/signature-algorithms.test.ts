import { constants, createHmac, KeyObject, sign as nodeSign } from 'node:crypto';
import { compactVerify, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ASYMMETRIC_ALGORITHMS } from '../src/options.js';
import type { Verifier } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, makeKey, reassemble, rejectsWith, sign, type TestKey } from './helpers.js';

// Asymmetric signatures are verified with node:crypto on keys jose imported, HMAC with jose's
// compactVerify (ADR 0017). Every algorithm the package accepts runs here: a genuine token verifies,
// and every way of bending its signature is refused, as jose's own verification refuses it (each
// bent token is also given to jose's compactVerify, which must refuse it too).

const SECRETS: Record<string, string> = {
  HS256: 'hs256-secret-of-at-least-thirty-two-bytes',
  HS384: 'hs384-secret-of-at-least-forty-eight-bytes-long-enough!',
  HS512: 'hs512-secret-of-at-least-sixty-four-bytes-which-is-long-enough-yes!',
};
const HASH: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

const keys = new Map<string, { key: TestKey; other: TestKey; verifier: Verifier }>();

beforeAll(async () => {
  for (const alg of ASYMMETRIC_ALGORITHMS) {
    const key = await makeKey(alg, `kid-${alg}`);
    const other = await makeKey(alg, `kid-${alg}`); // another key pair under the same kid
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [key.publicJwk],
      algorithms: [alg],
      cache: false,
    });
    keys.set(alg, { key, other, verifier });
  }
});
afterAll(async () => {
  for (const { verifier } of keys.values()) await verifier.close();
});

const entry = (alg: string) => keys.get(alg) as { key: TestKey; other: TestKey; verifier: Verifier };
const sigBytes = (token: string) => Buffer.from(token.split('.')[2] as string, 'base64url');
const withSignature = (token: string, bytes: Uint8Array) =>
  reassemble(token, { signature: Buffer.from(bytes).toString('base64url') });
const signingInput = (token: string) => Buffer.from(token.split('.').slice(0, 2).join('.'));

/** Signatures that bend a genuine one: every one must be refused. */
function bent(token: string): [string, string][] {
  const sig = sigBytes(token);
  const flipped = Buffer.from(sig);
  flipped[sig.length >> 1] = (flipped[sig.length >> 1] as number) ^ 0x01;
  const lastFlipped = Buffer.from(sig);
  lastFlipped[sig.length - 1] = (lastFlipped[sig.length - 1] as number) ^ 0x80;
  return [
    ['one bit flipped in the middle', withSignature(token, flipped)],
    ['one bit flipped in the last byte', withSignature(token, lastFlipped)],
    ['truncated by one byte', withSignature(token, sig.subarray(0, sig.length - 1))],
    ['extended by a zero byte', withSignature(token, Buffer.concat([sig, Buffer.alloc(1)]))],
    ['a zero byte in front', withSignature(token, Buffer.concat([Buffer.alloc(1), sig]))],
    ['all zero bytes', withSignature(token, Buffer.alloc(sig.length))],
    ['a single byte', withSignature(token, Buffer.alloc(1, 1))],
    ['the payload changed', reassemble(token, { payload: { iss: ISSUER, aud: AUDIENCE, sub: 'root' } })],
  ];
}

/** jose's verdict on a token: `undefined` when it verifies, else its error code. */
async function joseVerdict(token: string, key: TestKey | string, alg: string): Promise<string | undefined> {
  const verificationKey =
    typeof key === 'string' ? new TextEncoder().encode(key) : await importJWK(key.publicJwk, alg);
  return compactVerify(token, verificationKey, { algorithms: [alg] }).then(
    () => undefined,
    (err: { code?: string }) => err.code ?? 'error',
  );
}

describe.each(ASYMMETRIC_ALGORITHMS.map((a) => [a]))('%s', (alg) => {
  it('verifies a genuine token', async () => {
    const { key, verifier } = entry(alg);
    const principal = await verifier.verify(await sign(key, { sub: 'alice' }));
    expect(principal).toMatchObject({ subject: 'alice', header: { alg, kid: key.kid } });
  });

  it('refuses every bent signature with signature_invalid, as jose does', async () => {
    const { key, verifier } = entry(alg);
    const genuine = await sign(key);
    expect(await joseVerdict(genuine, key, alg)).toBeUndefined();
    for (const [name, token] of bent(genuine)) {
      expect(await joseVerdict(token, key, alg), name).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      await rejectsWith(verifier.verify(token), 'signature_invalid', 401);
    }
  });

  it('refuses a token signed by another key under the same kid', async () => {
    const { key, other, verifier } = entry(alg);
    const forged = await sign(other);
    expect(await joseVerdict(forged, key, alg)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    await rejectsWith(verifier.verify(forged), 'signature_invalid', 401);
  });

  it('refuses the genuine signature of another token', async () => {
    const { key, verifier } = entry(alg);
    const [a, b] = await Promise.all([sign(key, { sub: 'a' }), sign(key, { sub: 'b' })]);
    const swapped = reassemble(a, { signature: b.split('.')[2] as string });
    await rejectsWith(verifier.verify(swapped), 'signature_invalid', 401);
  });
});

describe('ECDSA: r || s only (RFC 7518 3.4)', () => {
  it.each(['ES256', 'ES384', 'ES512'])(
    '%s refuses the same signature DER-encoded, as jose does',
    async (alg) => {
      const { key, verifier } = entry(alg);
      const genuine = await sign(key);
      const der = nodeSign(
        HASH[alg.slice(2)] as string,
        signingInput(genuine),
        KeyObject.from(key.privateKey),
      );
      const token = withSignature(genuine, der);
      expect(await joseVerdict(token, key, alg)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      await rejectsWith(verifier.verify(token), 'signature_invalid', 401);
    },
  );

  it('refuses an ES256 token against a P-384 key of the same kid (the curve decides)', async () => {
    const p256 = await makeKey('ES256', 'shared');
    const p384 = await makeKey('ES384', 'shared');
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [{ ...p384.publicJwk, alg: undefined }],
      algorithms: ['ES256', 'ES384'],
      cache: false,
    });
    await rejectsWith(verifier.verify(await sign(p256)), 'key_not_found', 401);
    await verifier.close();
  });
});

describe('RSA: PKCS#1 v1.5 and PSS are told apart, PSS salt length is exact', () => {
  async function rsaVerifier(alg: string) {
    const key = await makeKey(alg, 'rsa');
    // A key without its own alg fits RS* and PS* alike: only the signature decides.
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [{ ...key.publicJwk, alg: undefined }],
      algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
      cache: false,
    });
    return { key, verifier };
  }

  it.each(['PS256', 'PS384', 'PS512'])(
    '%s refuses salt lengths other than the digest length, as jose does',
    async (alg) => {
      const { key, verifier } = await rsaVerifier(alg);
      const genuine = await sign(key);
      await expect(verifier.verify(genuine)).resolves.toBeDefined();
      const digest = Number(alg.slice(2)) / 8;
      for (const saltLength of [0, 20, digest - 1, digest + 1, constants.RSA_PSS_SALTLEN_MAX_SIGN]) {
        const signature = nodeSign(HASH[alg.slice(2)] as string, signingInput(genuine), {
          key: KeyObject.from(key.privateKey),
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength,
        });
        const token = withSignature(genuine, signature);
        expect(await joseVerdict(token, key, alg)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
        await rejectsWith(verifier.verify(token), 'signature_invalid', 401);
      }
      await verifier.close();
    },
  );

  it.each([
    ['RS256', 'PS256'],
    ['PS256', 'RS256'],
    ['RS384', 'PS384'],
    ['PS512', 'RS512'],
  ])('a %s signature presented as %s is refused', async (signedAs, presentedAs) => {
    const { key, verifier } = await rsaVerifier(signedAs);
    const genuine = await sign(key);
    await expect(verifier.verify(genuine)).resolves.toBeDefined();
    const token = reassemble(genuine, { header: { alg: presentedAs, kid: 'rsa', typ: 'at+jwt' } });
    // The header changed, so the signing input did: re-sign the new input with the old scheme.
    const padding = signedAs.startsWith('PS') ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
    const signature = nodeSign(HASH[signedAs.slice(2)] as string, signingInput(token), {
      key: KeyObject.from(key.privateKey),
      padding,
      saltLength: Number(signedAs.slice(2)) / 8,
    });
    await rejectsWith(verifier.verify(withSignature(token, signature)), 'signature_invalid', 401);
    await verifier.close();
  });
});

describe('EdDSA and Ed25519 name the same algorithm', () => {
  it('verifies an Ed25519 signature under either name when both are allowed', async () => {
    const key = await makeKey('Ed25519', 'ed');
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: [{ ...key.publicJwk, alg: undefined }],
      algorithms: ['EdDSA', 'Ed25519'],
      cache: false,
    });
    const asEd25519 = await sign(key);
    const asEdDsa = await sign({ ...key, alg: 'EdDSA' });
    expect((await verifier.verify(asEd25519)).header.alg).toBe('Ed25519');
    expect((await verifier.verify(asEdDsa)).header.alg).toBe('EdDSA');
    await verifier.close();
  });
});

describe.each(Object.keys(SECRETS).map((a) => [a]))('%s (HMAC, through jose)', (alg) => {
  const secret = SECRETS[alg] as string;
  const mint = (claims: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const h = Buffer.from(JSON.stringify({ alg, typ: 'at+jwt' })).toString('base64url');
    const p = Buffer.from(
      JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'svc', iat: now, exp: now + 600, ...claims }),
    ).toString('base64url');
    return `${h}.${p}.${createHmac(HASH[alg.slice(2)] as string, secret)
      .update(`${h}.${p}`)
      .digest('base64url')}`;
  };

  it('verifies a genuine token and refuses every bent MAC, as jose does', async () => {
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      secret,
      algorithms: [alg],
      cache: false,
    });
    const genuine = mint();
    expect((await verifier.verify(genuine)).header.alg).toBe(alg);
    for (const [name, token] of bent(genuine)) {
      expect(await joseVerdict(token, secret, alg), name).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      await rejectsWith(verifier.verify(token), 'signature_invalid', 401);
    }
    await verifier.close();
  });
});
