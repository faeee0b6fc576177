import type { Context, Middleware, Next } from 'koa';
import { adapterVerifier, asOidcError } from './adapter.js';
import { isOidcError, type OidcError } from './errors.js';
import { assertClaimRequirements, assertScopes, checkClaims, checkScopes } from './guards.js';
import { isPending } from './settle.js';
import type {
  ClaimRequirements,
  JwtClaims,
  Principal,
  ScopeCheckOptions,
  Verifier,
  VerifierOptions,
} from './types.js';

declare global {
  /** Request state shared by the AMAS packages, each under its own key. */
  interface AmasRequestState {
    /** The verified principal, set by `authenticate()` of `@amas/oidc`. */
    auth?: Principal<JwtClaims>;
  }
}

declare module 'koa' {
  interface DefaultState {
    /** Request state of the AMAS packages; `@amas/oidc` sets `amas.auth`. */
    amas?: AmasRequestState;
  }
}

/**
 * How the Koa adapter reports failures: `respond` (default) sets the RFC 6750 status, headers and
 * `{ error, message }` body; `throw` throws the {@link OidcError} to your error middleware.
 *
 * @example
 * ```ts
 * app.use(authenticate(verifier, { onError: 'throw' }));
 * ```
 */
export interface AdapterErrorOptions {
  onError?: 'respond' | 'throw';
}

/**
 * Options of {@link authenticate}.
 *
 * @example
 * ```ts
 * app.use(authenticate(verifier, { optional: true }));
 * ```
 */
export interface AuthenticateOptions extends AdapterErrorOptions {
  /** A request without a token passes with no principal; an invalid token still fails. */
  optional?: boolean;
}

/**
 * The middleware returned by {@link authenticate}, with its verifier (for `health()` and `close()`).
 *
 * @example
 * ```ts
 * const auth = authenticate({ issuer, audience });
 * router.get('/ready', (ctx) => { ctx.body = auth.verifier.health(); });
 * ```
 */
export type AuthenticateMiddleware = Middleware & { readonly verifier: Verifier<JwtClaims> };

function respond(ctx: Context, err: unknown, onError: AdapterErrorOptions['onError']): void {
  const error = asOidcError(err);
  if (onError === 'throw') throw error;
  ctx.status = error.status;
  ctx.set(error.headers as Record<string, string>);
  ctx.body = error.toJSON();
}

/**
 * Koa middleware (Koa 2 and 3) that verifies the request's bearer token and puts the principal on
 * `ctx.state.amas.auth`. Takes a verifier or the options of one.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { authenticate, requireScopes } from '@amas/oidc/koa';
 *
 * const app = new Koa();
 * app.use(authenticate({ issuer: 'https://login.example.com/', audience: 'https://api.example.com' }));
 * app.use(requireScopes('tools:run'));
 * app.use((ctx) => { ctx.body = { who: ctx.state.amas?.auth?.subject }; });
 * ```
 */
export function authenticate(
  verifier: Verifier<JwtClaims> | VerifierOptions,
  options: AuthenticateOptions = {},
): AuthenticateMiddleware {
  const { verifier: v, settle } = adapterVerifier(verifier);
  const verifyOptions = Object.freeze({ optional: options.optional === true });
  const middleware: Middleware = (ctx: Context, next: Next) => {
    const result = settle(
      { headers: ctx.headers, url: ctx.originalUrl ?? ctx.url, rawHeaders: ctx.req.rawHeaders },
      verifyOptions,
    );
    const accept = (principal: Principal<JwtClaims> | undefined) => {
      ctx.state.amas ??= {};
      ctx.state.amas.auth = principal;
      return next();
    };
    // A cached token goes on at once; a new one (or an error) once its verification settles.
    if (isPending(result)) return result.then(accept, (err: unknown) => respond(ctx, err, options.onError));
    return accept(result);
  };
  return Object.assign(middleware, { verifier: v });
}

/**
 * Koa middleware that requires scopes of the principal set by {@link authenticate}: all of them, or
 * one with `mode: 'any'`. Fails with 403 `insufficient_scope` (401 `token_missing` without a principal).
 *
 * @example
 * ```ts
 * router.post('/tools/run', requireScopes('tools:run'), handler);
 * ```
 */
export function requireScopes(
  scopes: string | readonly string[],
  options: ScopeCheckOptions & AdapterErrorOptions & { realm?: string } = {},
): Middleware {
  assertScopes(scopes, 'requireScopes');
  return async (ctx, next) => {
    try {
      checkScopes(ctx.state.amas?.auth, scopes, options);
    } catch (err) {
      return respond(ctx, err, options.onError);
    }
    await next();
  };
}

/**
 * Koa middleware that requires claims of the principal set by {@link authenticate}: per claim a
 * value, `{ includes }`, `{ oneOf }` or a predicate; or one predicate over the principal. Fails with
 * 403 `insufficient_scope` (401 `token_missing` without a principal).
 *
 * @example
 * ```ts
 * router.use('/admin', requireClaims({ roles: { includes: 'admin' } }));
 * ```
 */
export function requireClaims(
  requirements: ClaimRequirements,
  options: AdapterErrorOptions & { realm?: string } = {},
): Middleware {
  assertClaimRequirements(requirements, 'requireClaims');
  return async (ctx, next) => {
    try {
      checkClaims(ctx.state.amas?.auth, requirements, options);
    } catch (err) {
      return respond(ctx, err, options.onError);
    }
    await next();
  };
}

/**
 * Koa middleware that answers a {@link OidcError} thrown further down with its status, headers and
 * `{ error, message }` body, and rethrows every other error unchanged. Use it with `onError: 'throw'`.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/oidc/koa';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isOidcError(err)) throw err;
      ctx.status = err.status;
      ctx.set(err.headers as Record<string, string>);
      ctx.body = err.toJSON();
    }
  };
}
