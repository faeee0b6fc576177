import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
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
  namespace Express {
    interface Request {
      /** Request state of the AMAS packages; `@amas/oidc` sets `amas.auth`. */
      amas?: AmasRequestState;
    }
  }
  /** Request state shared by the AMAS packages, each under its own key. */
  interface AmasRequestState {
    /** The verified principal, set by `authenticate()` of `@amas/oidc`. */
    auth?: Principal<JwtClaims>;
  }
}

/**
 * How an adapter reports failures: `respond` (default) answers with the RFC 6750 status, headers
 * and `{ error, message }` body; `next` passes the {@link OidcError} to `next(err)`.
 *
 * @example
 * ```ts
 * app.use(authenticate(verifier, { onError: 'next' }));
 * ```
 */
export interface AdapterErrorOptions {
  onError?: 'respond' | 'next';
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
 * app.get('/ready', (_req, res) => res.json(auth.verifier.health()));
 * ```
 */
export type AuthenticateMiddleware = RequestHandler & { readonly verifier: Verifier<JwtClaims> };

function fail(
  err: unknown,
  res: Response,
  next: NextFunction,
  onError: AdapterErrorOptions['onError'],
): void {
  const error = asOidcError(err);
  if (onError === 'next' || res.headersSent) {
    next(error);
    return;
  }
  res.status(error.status).set(error.headers).json(error.toJSON());
}

/**
 * Express middleware (Express 4 and 5) that verifies the request's bearer token and puts the
 * principal on `req.amas.auth`. Takes a verifier or the options of one.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { authenticate, requireScopes } from '@amas/oidc/express';
 *
 * const app = express();
 * app.use(authenticate({ issuer: 'https://login.example.com/', audience: 'https://api.example.com' }));
 * app.post('/tools/:name', requireScopes('tools:run'), (req, res) => res.json({ who: req.amas?.auth?.subject }));
 * ```
 */
export function authenticate(
  verifier: Verifier<JwtClaims> | VerifierOptions,
  options: AuthenticateOptions = {},
): AuthenticateMiddleware {
  const { verifier: v, settle } = adapterVerifier(verifier);
  const verifyOptions = Object.freeze({ optional: options.optional === true });
  const middleware: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    const cookies = (req as { cookies?: Record<string, unknown> }).cookies;
    const result = settle(
      { headers: req.headers, url: req.originalUrl ?? req.url, cookies, rawHeaders: req.rawHeaders },
      verifyOptions,
    );
    const accept = (principal: Principal<JwtClaims> | undefined) => {
      req.amas ??= {};
      req.amas.auth = principal;
      next();
    };
    // A cached token goes on at once; a new one (or an error) once its verification settles.
    if (isPending(result)) result.then(accept, (err: unknown) => fail(err, res, next, options.onError));
    else accept(result);
  };
  return Object.assign(middleware, { verifier: v });
}

/**
 * Express middleware that requires scopes of the principal set by {@link authenticate}: all of them,
 * or one with `mode: 'any'`. Fails with 403 `insufficient_scope` (401 `token_missing` without a
 * principal).
 *
 * @example
 * ```ts
 * app.delete('/files/:id', requireScopes(['files:write', 'files:admin'], { mode: 'any' }), handler);
 * ```
 */
export function requireScopes(
  scopes: string | readonly string[],
  options: ScopeCheckOptions & AdapterErrorOptions & { realm?: string } = {},
): RequestHandler {
  assertScopes(scopes, 'requireScopes');
  return (req, res, next) => {
    try {
      checkScopes(req.amas?.auth, scopes, options);
    } catch (err) {
      return fail(err, res, next, options.onError);
    }
    next();
  };
}

/**
 * Express middleware that requires claims of the principal set by {@link authenticate}: per claim a
 * value, `{ includes }`, `{ oneOf }` or a predicate; or one predicate over the principal. Fails with
 * 403 `insufficient_scope` (401 `token_missing` without a principal).
 *
 * @example
 * ```ts
 * app.use('/admin', requireClaims({ roles: { includes: 'admin' } }));
 * app.use('/agents', requireClaims((p) => p.clientId === 'orchestrator'));
 * ```
 */
export function requireClaims(
  requirements: ClaimRequirements,
  options: AdapterErrorOptions & { realm?: string } = {},
): RequestHandler {
  assertClaimRequirements(requirements, 'requireClaims');
  return (req, res, next) => {
    try {
      checkClaims(req.amas?.auth, requirements, options);
    } catch (err) {
      return fail(err, res, next, options.onError);
    }
    next();
  };
}

/**
 * Express error middleware that answers a {@link OidcError} with its status, headers and
 * `{ error, message }` body, and passes every other error on unchanged. Use it with
 * `onError: 'next'`, after your own error logging.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/oidc/express';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isOidcError(err) || res.headersSent) return next(err);
    res.status(err.status).set(err.headers).json(err.toJSON());
  };
}
