import { createHash } from 'node:crypto';
import { type CryptoKey, importJWK } from 'jose';
import { type SignatureCheck, signatureCheck } from './signature.js';
import type { PublicJwk } from './types.js';

/** One public verification key, with its imports (ready to verify) cached per algorithm. */
export interface VerificationKey {
  /** Stable identity across refetches: `kid` and the RFC 7638 thumbprint. */
  readonly id: string;
  readonly kid: string | undefined;
  readonly jwk: Readonly<PublicJwk>;
  readonly imports: Map<string, Promise<SignatureCheck>>;
  /** Imports that have completed, for a synchronous lookup on the hot path. */
  readonly ready: Map<string, SignatureCheck>;
}

/** A parsed key set: lookups by `kid` and the set of key identities (for the token cache). */
export interface KeySet {
  readonly keys: readonly VerificationKey[];
  readonly byKid: ReadonlyMap<string, readonly VerificationKey[]>;
  readonly ids: ReadonlySet<string>;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/** Whether a JWS `alg` can be verified with a JWK, by key type, curve and the key's own `alg`. */
export function keyFitsAlgorithm(jwk: Readonly<PublicJwk>, alg: string): boolean {
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (/^(RS|PS)(256|384|512)$/.test(alg)) return jwk.kty === 'RSA';
  const curve = EC_CURVES[alg];
  if (curve) return jwk.kty === 'EC' && jwk.crv === curve;
  if (alg === 'EdDSA' || alg === 'Ed25519') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
  return false;
}

const b64url = /^[A-Za-z0-9_-]+$/;
function str(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 2048 && b64url.test(v);
}

/** The bit length of a big-endian unsigned integer, leading zero octets ignored. */
function bitLength(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] as number));
}

/** Whether a big-endian unsigned integer is odd and greater than 1. */
function oddAbove1(bytes: Uint8Array): boolean {
  const last = bytes[bytes.length - 1];
  return last !== undefined && (last & 1) === 1 && bitLength(bytes) > 1;
}

/** Why a JWK cannot be used for verification, or `undefined` when it can. */
export function jwkProblem(jwk: unknown): string | undefined {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'not an object';
  const k = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in k)) return 'contains private or symmetric key material';
  if (k.kid !== undefined && (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > 256)) {
    return 'has an invalid kid';
  }
  if (k.use !== undefined && k.use !== 'sig') return 'is not a signing key';
  if (k.key_ops !== undefined && (!Array.isArray(k.key_ops) || !k.key_ops.includes('verify'))) {
    return 'is not allowed to verify';
  }
  if (k.alg !== undefined && typeof k.alg !== 'string') return 'has an invalid alg';
  switch (k.kty) {
    case 'RSA':
      if (!str(k.n) || !str(k.e)) return 'is an RSA key without n or e';
      // Counted on the decoded modulus: zero octets in front would make a short key look long.
      if (bitLength(Buffer.from(k.n, 'base64url')) < 2048) return 'is an RSA key shorter than 2048 bits';
      // With e = 1 a signature is its own padded message, so anyone can forge one; an even e is no RSA key.
      if (!oddAbove1(Buffer.from(k.e, 'base64url'))) return 'has an unsafe RSA public exponent';
      return undefined;
    case 'EC':
      if (!['P-256', 'P-384', 'P-521'].includes(k.crv as string)) return 'has an unsupported curve';
      if (!str(k.x) || !str(k.y)) return 'is an EC key without x or y';
      return undefined;
    case 'OKP':
      if (k.crv !== 'Ed25519') return 'has an unsupported curve';
      if (!str(k.x)) return 'is an OKP key without x';
      return undefined;
    default:
      return 'has an unsupported key type';
  }
}

function thumbprint(jwk: Readonly<PublicJwk>): string {
  const members =
    jwk.kty === 'RSA'
      ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
      : jwk.kty === 'EC'
        ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
        : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/**
 * Builds a key set from a JWKS document. Unusable keys (encryption keys, symmetric or private keys,
 * unknown types) are skipped; a document that is not a JWKS, has more than `maxKeys` keys or no
 * usable key at all is refused, so the previous keys stay in service (stale-if-error).
 */
export function buildKeySet(document: unknown, maxKeys: number): KeySet {
  if (
    typeof document !== 'object' ||
    document === null ||
    !Array.isArray((document as { keys?: unknown }).keys)
  ) {
    throw new Error('the document is not a JWKS (no "keys" array)');
  }
  const raw = (document as { keys: unknown[] }).keys;
  if (raw.length > maxKeys)
    throw new Error(`the JWKS has ${raw.length} keys, more than maxKeys (${maxKeys})`);
  const keys: VerificationKey[] = [];
  const byKid = new Map<string, VerificationKey[]>();
  for (const candidate of raw) {
    if (jwkProblem(candidate) !== undefined) continue;
    const c = candidate as PublicJwk;
    const jwk: PublicJwk = Object.freeze({
      kty: c.kty,
      ...(c.kid === undefined ? {} : { kid: c.kid }),
      ...(c.alg === undefined ? {} : { alg: c.alg }),
      ...(c.crv === undefined ? {} : { crv: c.crv }),
      ...(c.n === undefined ? {} : { n: c.n, e: c.e }),
      ...(c.x === undefined ? {} : { x: c.x }),
      ...(c.y === undefined ? {} : { y: c.y }),
    });
    const key: VerificationKey = {
      id: `${jwk.kid ?? ''}#${thumbprint(jwk)}`,
      kid: jwk.kid,
      jwk,
      imports: new Map(),
      ready: new Map(),
    };
    keys.push(key);
    if (key.kid !== undefined) {
      const list = byKid.get(key.kid);
      if (list) list.push(key);
      else byKid.set(key.kid, [key]);
    }
  }
  if (keys.length === 0) throw new Error('the JWKS has no usable signing key');
  return { keys, byKid, ids: new Set(keys.map((k) => k.id)) };
}

/** The keys of a set that may verify a token with this `alg` and `kid`. */
export function candidateKeys(set: KeySet, alg: string, kid: string | undefined): VerificationKey[] {
  const pool = kid === undefined ? set.keys : (set.byKid.get(kid) ?? []);
  return pool.filter((k) => keyFitsAlgorithm(k.jwk, alg));
}

/**
 * Imports a key for one algorithm, once: jose parses and imports the JWK, then the key is prepared
 * for its algorithm ({@link signatureCheck}). A failed import is not cached.
 */
export function importFor(key: VerificationKey, alg: string): Promise<SignatureCheck> {
  let imported = key.imports.get(alg);
  if (!imported) {
    imported = (importJWK({ ...key.jwk, alg }, alg) as Promise<CryptoKey>).then((k) =>
      signatureCheck(k, alg),
    );
    key.imports.set(alg, imported);
    imported.then(
      (k) => key.ready.set(alg, k),
      () => key.imports.delete(alg),
    );
  }
  return imported;
}
