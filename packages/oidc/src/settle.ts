import type { JwtClaims, Principal, RequestLike, Verifier, VerifyRequestOptions } from './types.js';

/**
 * `verifyRequest`, answered synchronously when it can be: the principal of a cached token (or
 * `undefined` for an optional request without a token) as a value, anything else (a token never
 * seen, an error) as a promise. Lets the adapters pass a cached token on without a promise hop.
 */
export type SettleRequest<TClaims = JwtClaims> = (
  request: RequestLike,
  options: VerifyRequestOptions | undefined,
) => Principal<TClaims> | undefined | Promise<Principal<TClaims> | undefined>;

/**
 * Where a verifier of this package keeps its {@link SettleRequest}: a registered symbol, so that the
 * ESM and CommonJS copies of the package find it on each other's verifiers. Not part of the public API.
 */
export const SETTLE_REQUEST: unique symbol = Symbol.for('@amas/oidc/settle-request') as never;

/**
 * The {@link SettleRequest} of a verifier: its own, or `verifyRequest` for any other object that has
 * one (a wrapper, a test double), which then always answers with a native promise (whatever thenable
 * the wrapper returns, or a value it returns by mistake).
 */
export function settlerOf<TClaims>(verifier: Verifier<TClaims>): SettleRequest<TClaims> {
  const own = (verifier as { [SETTLE_REQUEST]?: unknown })[SETTLE_REQUEST];
  if (typeof own === 'function') return own as SettleRequest<TClaims>;
  return (request, options) => {
    try {
      return Promise.resolve(verifier.verifyRequest(request, options ?? {}));
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

/**
 * Whether an answer of a {@link SettleRequest} is still pending. A thenable test rather than
 * `instanceof Promise`: a promise of another realm (a test runner's VM context) must never be taken for
 * a principal. A principal never has a `then` member.
 */
export function isPending<T>(result: T | PromiseLike<T>): result is PromiseLike<T> {
  return typeof (result as { then?: unknown } | undefined)?.then === 'function';
}
