import type { ErrorRequestHandler } from 'express';
import { isTelemetryError } from './errors.js';

/**
 * Express error middleware that answers a {@link TelemetryError} with its status, headers and
 * `{ error, message }` body, and passes every other error on unchanged.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/otel/express';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isTelemetryError(err) || res.headersSent) return next(err);
    res.status(err.status).set(err.headers).json(err.toJSON());
  };
}
