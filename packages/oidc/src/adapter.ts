import { authError } from './challenge.js';
import { isOidcError, type OidcError } from './errors.js';
import { type SettleRequest, settlerOf } from './settle.js';
import type { JwtClaims, Verifier, VerifierOptions } from './types.js';
import { createVerifier } from './verifier.js';

function isVerifier(value: unknown): value is Verifier<JwtClaims> {
  return (
    typeof value === 'object' && value !== null && typeof (value as Verifier).verifyRequest === 'function'
  );
}

/**
 * What `authenticate()` of the Express and Koa adapters works with: the verifier it was given (or one
 * made from the options it was given) and how to settle a request with it ({@link settlerOf}).
 */
export function adapterVerifier(verifier: Verifier<JwtClaims> | VerifierOptions): {
  readonly verifier: Verifier<JwtClaims>;
  readonly settle: SettleRequest<JwtClaims>;
} {
  const v = isVerifier(verifier) ? verifier : createVerifier(verifier);
  return { verifier: v, settle: settlerOf(v) };
}

/** Any failure of a verification as an {@link OidcError}: one that is not is a 401, never a 500. */
export function asOidcError(err: unknown): OidcError {
  return isOidcError(err)
    ? err
    : authError('signature_invalid', 'The token could not be verified.', { cause: err });
}
