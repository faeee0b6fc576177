import { authError, type ChallengeContext } from './challenge.js';

/** A compact JWS taken apart, before any key is looked at. Nothing in it is trusted yet. */
export interface ParsedToken {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly typ: string | undefined;
  readonly iss: string;
  readonly payload: Record<string, unknown>;
  /** The length of the signing input (`header.payload`) at the start of the token. */
  readonly signedLength: number;
  /** The signature segment, canonical base64url. */
  readonly signature: string;
}

const segment = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const MAX_KID_LENGTH = 256;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Strict base64url: no padding, and the unused low bits of the last character are zero. Decoders
 * ignore those bits, so without this check several strings decode to the same bytes (a malleable
 * token: a second string that verifies).
 */
function canonical(part: string): boolean {
  if (!segment.test(part)) return false;
  const rest = part.length % 4;
  if (rest === 1) return false;
  if (rest === 0) return true;
  const last = ALPHABET.indexOf(part.charAt(part.length - 1));
  return (last & (rest === 2 ? 0b1111 : 0b11)) === 0;
}

function decodeJson(part: string): unknown {
  if (!canonical(part)) return undefined;
  try {
    return JSON.parse(utf8.decode(Buffer.from(part, 'base64url')));
  } catch {
    return undefined;
  }
}

/**
 * Takes a compact JWS apart with strict rules, so that everything that can be refused without a key
 * is refused here, before the issuer is looked up and before anything is fetched: wrong shape,
 * oversized, JWE, bad base64url or JSON, `alg: none` in any case, `crit`, a hostile `kid`, a missing
 * or non-string `iss`.
 */
export function parseToken(token: unknown, maxLength: number, ctx: ChallengeContext): ParsedToken {
  if (typeof token !== 'string' || token.length === 0) {
    throw authError('token_malformed', 'The token is not a compact JWS.', ctx);
  }
  if (token.length > maxLength) {
    throw authError('token_malformed', 'The token exceeds the size limit.', ctx);
  }
  const parts = token.split('.');
  if (parts.length === 5) {
    throw authError('token_malformed', 'Encrypted tokens (JWE) are not accepted.', ctx);
  }
  if (parts.length !== 3) {
    throw authError('token_malformed', 'The token is not a compact JWS.', ctx);
  }
  const [encodedHeader = '', encodedPayload = '', signature = ''] = parts;
  const header = decodeJson(encodedHeader);
  if (!isPlainObject(header)) {
    throw authError('token_malformed', 'The token header is not valid base64url-encoded JSON.', ctx);
  }
  const { alg, kid, typ, crit } = header;
  if (typeof alg !== 'string' || alg.length === 0 || alg.length > 32) {
    throw authError('token_malformed', 'The token header has no valid alg.', ctx);
  }
  if (alg.toLowerCase() === 'none') {
    throw authError('algorithm_not_allowed', 'Unsigned tokens are not accepted.', ctx);
  }
  if (crit !== undefined) {
    throw authError(
      'token_malformed',
      'The token has critical header parameters this verifier does not support.',
      ctx,
    );
  }
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) {
    throw authError('token_malformed', 'The token header has an invalid kid.', ctx);
  }
  if (typ !== undefined && typeof typ !== 'string') {
    throw authError('token_malformed', 'The token header has an invalid typ.', ctx);
  }
  if (signature.length === 0) {
    throw authError('signature_invalid', 'The token is not signed.', ctx);
  }
  if (!canonical(signature)) {
    throw authError('token_malformed', 'The token signature is not valid base64url.', ctx);
  }
  const payload = decodeJson(encodedPayload);
  if (!isPlainObject(payload)) {
    throw authError('token_malformed', 'The token payload is not a base64url-encoded JSON object.', ctx);
  }
  if (typeof payload.iss !== 'string' || payload.iss.length === 0) {
    throw authError('issuer_mismatch', 'The token has no single issuer.', ctx);
  }
  return {
    alg,
    kid,
    typ,
    iss: payload.iss,
    payload,
    signedLength: encodedHeader.length + 1 + encodedPayload.length,
    signature,
  };
}
