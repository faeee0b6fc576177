import { constants, KeyObject, verify as nodeVerify } from 'node:crypto';
import { type CryptoKey, compactVerify, type VerifyOptions } from 'jose';

/**
 * The signature of the token does not verify with this key (any failure inside the cryptography
 * counts as one). Another key with the same `kid` may still be tried; in the end it is 401
 * `signature_invalid`.
 */
export class SignatureMismatch extends Error {
  constructor(cause?: unknown) {
    super('The signature does not verify.', cause === undefined ? undefined : { cause });
    this.name = 'SignatureMismatch';
  }
}

/** One key, imported for one algorithm, ready to verify signatures of compact JWS. */
export interface SignatureCheck {
  /**
   * Resolves when the signature of `token` verifies. Rejects with {@link SignatureMismatch} when it
   * does not, or with jose's error when jose refuses the token for another reason.
   *
   * @param signedLength the length of the signing input (`header.payload`) at the start of `token`
   * @param signature the third segment of `token`, canonical base64url (checked by `parseToken`)
   */
  verify(token: string, signedLength: number, signature: string): Promise<void>;
}

/** How one JWS algorithm (RFC 7518, RFC 8037, RFC 9864) is verified with `node:crypto`. */
interface Scheme {
  /** The digest; none for Ed25519, which hashes inside the algorithm. */
  readonly hash: string | null;
  readonly keyType: 'rsa' | 'ec' | 'ed25519';
  /** The curve as Node names it (`asymmetricKeyDetails.namedCurve`). */
  readonly curve?: string;
  readonly padding?: number;
  /** RSA-PSS: the salt length, which must be exactly this (RFC 7518 3.5: the digest's length). */
  readonly saltLength?: number;
}

const pkcs1 = (hash: string): Scheme => ({ hash, keyType: 'rsa', padding: constants.RSA_PKCS1_PADDING });
const pss = (hash: string, saltLength: number): Scheme => ({
  hash,
  keyType: 'rsa',
  padding: constants.RSA_PKCS1_PSS_PADDING,
  saltLength,
});
const ecdsa = (hash: string, curve: string): Scheme => ({ hash, keyType: 'ec', curve });
const eddsa: Scheme = { hash: null, keyType: 'ed25519' };

/**
 * Every asymmetric algorithm this package accepts (`ASYMMETRIC_ALGORITHMS`), verified with
 * `node:crypto`. Anything else (HMAC) is verified by jose's `compactVerify`.
 */
export const NODE_SCHEMES: Readonly<Record<string, Scheme>> = Object.freeze({
  RS256: pkcs1('sha256'),
  RS384: pkcs1('sha384'),
  RS512: pkcs1('sha512'),
  PS256: pss('sha256', 32),
  PS384: pss('sha384', 48),
  PS512: pss('sha512', 64),
  ES256: ecdsa('sha256', 'prime256v1'),
  ES384: ecdsa('sha384', 'secp384r1'),
  ES512: ecdsa('sha512', 'secp521r1'),
  EdDSA: eddsa,
  Ed25519: eddsa,
});

const MIN_RSA_BITS = 2048;

/**
 * An asymmetric key verified with `node:crypto`'s one-shot `verify` in its callback form (the work
 * runs on the libuv thread pool, as WebCrypto's does). The key was imported by jose (`importJWK`);
 * here it only gets its `KeyObject` view and the parameters of its algorithm, once.
 */
class NodeSignatureCheck implements SignatureCheck {
  constructor(
    private readonly hash: string | null,
    private readonly key:
      | KeyObject
      | { key: KeyObject; padding: number; saltLength?: number }
      | { key: KeyObject; dsaEncoding: 'ieee-p1363' },
  ) {}

  verify(token: string, signedLength: number, signature: string): Promise<void> {
    // parseToken checked every segment to be base64url: latin1 gives the ASCII bytes jose signs over.
    const data = Buffer.from(token.slice(0, signedLength), 'latin1');
    const bytes = Buffer.from(signature, 'base64url');
    return new Promise((resolve, reject) => {
      try {
        nodeVerify(this.hash, data, this.key, bytes, (err, ok) => {
          if (err === null && ok === true) resolve();
          else reject(new SignatureMismatch(err ?? undefined));
        });
      } catch (err) {
        reject(new SignatureMismatch(err));
      }
    });
  }
}

/** HMAC keys (and anything without a `node:crypto` scheme): jose's `compactVerify`, signature only. */
class JoseSignatureCheck implements SignatureCheck {
  private readonly options: VerifyOptions;

  constructor(
    private readonly key: CryptoKey,
    alg: string,
  ) {
    this.options = Object.freeze({ algorithms: Object.freeze([alg]) as string[] });
  }

  verify(token: string): Promise<void> {
    return compactVerify(token, this.key, this.options).then(
      () => undefined,
      (err: unknown) => {
        if ((err as { code?: string }).code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') {
          throw new SignatureMismatch(err);
        }
        throw err;
      },
    );
  }
}

/**
 * Prepares a key imported by jose for one algorithm. For the asymmetric algorithms, the key must be
 * a public key of the algorithm's type (RSA of at least 2048 bits, EC on the algorithm's curve,
 * Ed25519); anything else throws here, so it never verifies a token.
 */
export function signatureCheck(cryptoKey: CryptoKey, alg: string): SignatureCheck {
  const scheme = NODE_SCHEMES[alg];
  if (scheme === undefined) return new JoseSignatureCheck(cryptoKey, alg);
  const key = KeyObject.from(cryptoKey);
  if (key.type !== 'public' || key.asymmetricKeyType !== scheme.keyType) {
    throw new TypeError(`the key is not a ${scheme.keyType} public key, as ${alg} needs`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  switch (scheme.keyType) {
    case 'rsa':
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS) {
        throw new TypeError(`${alg} needs an RSA key of at least ${MIN_RSA_BITS} bits`);
      }
      return new NodeSignatureCheck(
        scheme.hash,
        Object.freeze({
          key,
          padding: scheme.padding as number,
          ...(scheme.saltLength === undefined ? {} : { saltLength: scheme.saltLength }),
        }),
      );
    case 'ec':
      if (details.namedCurve !== scheme.curve) throw new TypeError(`the key is not on the curve of ${alg}`);
      // JWS carries ECDSA signatures as r || s (RFC 7518 3.4), never DER.
      return new NodeSignatureCheck(scheme.hash, Object.freeze({ key, dsaEncoding: 'ieee-p1363' as const }));
    default:
      return new NodeSignatureCheck(scheme.hash, key);
  }
}
