import type { Middleware } from 'koa';
import { isOidcError } from './errors.js';

/**
 * Koa middleware that answers a {@link OidcError} thrown further down with its status, headers and
 * `{ error, message }` body, and rethrows every other error unchanged.
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
      ctx.set(err.headers);
      ctx.body = err.toJSON();
    }
  };
}
