/**
 * Every code a {@link OidcError} can carry. Codes are stable: they are part of the public API,
 * shown to operators and clients, and never renamed within a major version.
 *
 * @example
 * ```ts
 * const retryable: OidcErrorCode[] = ['jwks_unavailable', 'discovery_failed'];
 * ```
 */
export type OidcErrorCode =
  | 'token_missing'
  | 'token_malformed'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'signature_invalid'
  | 'issuer_mismatch'
  | 'audience_mismatch'
  | 'algorithm_not_allowed'
  | 'key_not_found'
  | 'token_type_invalid'
  | 'token_sender_constrained'
  | 'claim_invalid'
  | 'insufficient_scope'
  | 'invalid_request'
  | 'jwks_unavailable'
  | 'discovery_failed'
  | 'config_invalid';

/**
 * The HTTP status each code maps to by default: 400 `invalid_request`, 403 `insufficient_scope`,
 * 503 for an outage of the key source, 500 `config_invalid` (thrown at start-up only), 401 otherwise.
 *
 * @example
 * ```ts
 * OidcErrorStatus.jwks_unavailable; // 503
 * ```
 */
export const OidcErrorStatus: Readonly<Record<OidcErrorCode, number>> = Object.freeze({
  token_missing: 401,
  token_malformed: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  signature_invalid: 401,
  issuer_mismatch: 401,
  audience_mismatch: 401,
  algorithm_not_allowed: 401,
  key_not_found: 401,
  token_type_invalid: 401,
  token_sender_constrained: 401,
  claim_invalid: 401,
  insufficient_scope: 403,
  invalid_request: 400,
  jwks_unavailable: 503,
  discovery_failed: 503,
  config_invalid: 500,
});

const BRAND = Symbol.for('@amas/oidc/error');

/**
 * Options of the {@link OidcError} constructor.
 *
 * @example
 * ```ts
 * new OidcError('token_expired', 'The token has expired.', { headers: { 'WWW-Authenticate': 'Bearer' } });
 * ```
 */
export interface OidcErrorOptions {
  /** HTTP status; defaults to the status of the code. */
  status?: number;
  /** HTTP headers an adapter sends with the error response (for example `WWW-Authenticate`). */
  headers?: Record<string, string>;
  /** The underlying error, kept for logs; never sent to clients. */
  cause?: unknown;
}

/**
 * The one error family of `@amas/oidc`: every failure while verifying a bearer token is one of these,
 * with a stable {@link OidcErrorCode}, an HTTP `status` and optional response `headers`.
 * Messages never contain tokens, secrets or stack traces of other errors.
 *
 * @example
 * ```ts
 * try {
 *   // ...
 * } catch (err) {
 *   if (isOidcError(err) && err.code === 'token_expired') {
 *     res.status(err.status).set(err.headers).json({ error: err.code });
 *   }
 * }
 * ```
 */
export class OidcError extends Error {
  override readonly name = 'OidcError';
  /** Stable, machine-readable reason. */
  readonly code: OidcErrorCode;
  /** HTTP status an adapter answers with. */
  readonly status: number;
  /** HTTP headers an adapter sends with the response. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: OidcErrorCode, message: string, options: OidcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? OidcErrorStatus[code];
    this.headers = Object.freeze({ ...options.headers });
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** The JSON body adapters send: the code and the message, nothing else. */
  toJSON(): { error: OidcErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}

/**
 * Tells whether a value is a {@link OidcError}. Works across the ESM and CommonJS copies of the
 * package (where `instanceof` does not), because it checks a global symbol brand.
 *
 * @example
 * ```ts
 * if (isOidcError(err)) console.warn(err.code);
 * ```
 */
export function isOidcError(value: unknown): value is OidcError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
