/**
 * Every code a {@link OpaError} can carry. Codes are stable: they are part of the public API,
 * shown to operators and clients, and never renamed within a major version.
 */
export type OpaErrorCode =
  | 'policy_denied'
  | 'policy_undefined'
  | 'policy_unavailable'
  | 'approval_required'
  | 'approval_not_found'
  | 'approval_expired'
  | 'approval_already_used'
  | 'approval_forbidden'
  | 'approval_pending'
  | 'approval_denied'
  | 'approval_mismatch'
  | 'approval_already_decided'
  | 'approval_unavailable'
  | 'approval_limit'
  | 'unauthenticated'
  | 'unsupported_media_type'
  | 'input_invalid'
  | 'config_invalid';

/** The HTTP status each code maps to by default. */
export const OpaErrorStatus: Readonly<Record<OpaErrorCode, number>> = Object.freeze({
  policy_denied: 403,
  policy_undefined: 403,
  policy_unavailable: 503,
  approval_required: 202,
  approval_not_found: 404,
  approval_expired: 410,
  approval_already_used: 409,
  approval_forbidden: 403,
  approval_pending: 409,
  approval_denied: 403,
  approval_mismatch: 403,
  approval_already_decided: 409,
  approval_unavailable: 503,
  approval_limit: 429,
  unauthenticated: 401,
  unsupported_media_type: 415,
  input_invalid: 400,
  config_invalid: 500,
});

const BRAND = Symbol.for('@amas/opa/error');

/** Options of the {@link OpaError} constructor. */
export interface OpaErrorOptions {
  /** HTTP status; defaults to the status of the code. */
  status?: number;
  /** HTTP headers an adapter sends with the error response (for example `WWW-Authenticate`). */
  headers?: Record<string, string>;
  /** The underlying error, kept for logs; never sent to clients. */
  cause?: unknown;
}

/**
 * The one error family of `@amas/opa`: every failure while asking Open Policy Agent for a decision is one of these,
 * with a stable {@link OpaErrorCode}, an HTTP `status` and optional response `headers`.
 * Messages never contain tokens, secrets or stack traces of other errors.
 *
 * @example
 * ```ts
 * try {
 *   // ...
 * } catch (err) {
 *   if (isOpaError(err) && err.code === 'policy_unavailable') {
 *     res.status(err.status).set(err.headers).json({ error: err.code });
 *   }
 * }
 * ```
 */
export class OpaError extends Error {
  override readonly name = 'OpaError';
  /** Stable, machine-readable reason. */
  readonly code: OpaErrorCode;
  /** HTTP status an adapter answers with. */
  readonly status: number;
  /** HTTP headers an adapter sends with the response. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: OpaErrorCode, message: string, options: OpaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? OpaErrorStatus[code];
    this.headers = Object.freeze({ ...options.headers });
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** The JSON body adapters send: the code and the message, nothing else. */
  toJSON(): { error: OpaErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}

/**
 * Tells whether a value is a {@link OpaError}. Works across the ESM and CommonJS copies of the
 * package (where `instanceof` does not), because it checks a global symbol brand.
 *
 * @example
 * ```ts
 * if (isOpaError(err)) console.warn(err.code);
 * ```
 */
export function isOpaError(value: unknown): value is OpaError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
