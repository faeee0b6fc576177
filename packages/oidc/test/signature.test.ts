import { generateKeyPairSync, type JsonWebKey, webcrypto } from 'node:crypto';
import type { CryptoKey } from 'jose';
import { describe, expect, it } from 'vitest';
import { ASYMMETRIC_ALGORITHMS } from '../src/options.js';
import { NODE_SCHEMES, signatureCheck } from '../src/signature.js';

// The preparation of a key for node:crypto is the second line of defence: keys.ts already drops
// short RSA keys and filters keys by type and curve before anything is imported. Here each key that
// does not fit its algorithm must be refused even if it got that far.

const subtle = webcrypto.subtle;
const jwkOf = (key: { export(o: { format: 'jwk' }): object }) => key.export({ format: 'jwk' }) as JsonWebKey;

async function rsaKey(
  bits: number,
  name: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS',
  hash = 'SHA-256',
): Promise<CryptoKey> {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return (await subtle.importKey('jwk', jwkOf(publicKey), { name, hash }, true, ['verify'])) as CryptoKey;
}

async function ecKey(curve: 'P-256' | 'P-384' | 'P-521'): Promise<CryptoKey> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return (await subtle.importKey('jwk', jwkOf(publicKey), { name: 'ECDSA', namedCurve: curve }, true, [
    'verify',
  ])) as CryptoKey;
}

describe('signature schemes', () => {
  it('cover exactly the asymmetric algorithms the package accepts', () => {
    expect(Object.keys(NODE_SCHEMES).sort()).toEqual([...ASYMMETRIC_ALGORITHMS].sort());
  });

  it('refuse an RSA key under 2048 bits for every RSA algorithm', async () => {
    const pkcs1 = await rsaKey(1024, 'RSASSA-PKCS1-v1_5');
    const pss = await rsaKey(1024, 'RSA-PSS');
    for (const alg of ['RS256', 'RS384', 'RS512']) expect(() => signatureCheck(pkcs1, alg)).toThrow(/2048/);
    for (const alg of ['PS256', 'PS384', 'PS512']) expect(() => signatureCheck(pss, alg)).toThrow(/2048/);
    expect(signatureCheck(await rsaKey(2048, 'RSASSA-PKCS1-v1_5'), 'RS256')).toBeDefined();
  });

  it.each([
    ['ES256', 'P-384'],
    ['ES384', 'P-256'],
    ['ES512', 'P-384'],
  ] as const)('refuse for %s a key on %s', async (alg, curve) => {
    const key = await ecKey(curve);
    expect(() => signatureCheck(key, alg)).toThrow(/curve/);
  });

  it('refuse a key of another type than the algorithm needs', async () => {
    const ec = await ecKey('P-256');
    const rsa = await rsaKey(2048, 'RSASSA-PKCS1-v1_5');
    expect(() => signatureCheck(ec, 'RS256')).toThrow(/rsa public key/);
    expect(() => signatureCheck(rsa, 'ES256')).toThrow(/ec public key/);
    expect(() => signatureCheck(rsa, 'EdDSA')).toThrow(/ed25519 public key/);
  });

  it('refuse a private key', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = (await subtle.importKey(
      'jwk',
      jwkOf(privateKey),
      { name: 'ECDSA', namedCurve: 'P-256' },
      true,
      ['sign'],
    )) as CryptoKey;
    expect(() => signatureCheck(key, 'ES256')).toThrow(/public key/);
  });
});
