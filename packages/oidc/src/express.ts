import type { ErrorRequestHandler } from 'express';
import { isOidcError } from './errors.js';

/**
 * Express error middleware that answers a {@link OidcError} with its status, headers and
 * `{ error, message }` body, and passes every other error on unchanged.
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
