/**
 * Every code a {@link TelemetryError} can carry. Codes are stable: they are part of the public API,
 * shown to operators and clients, and never renamed within a major version.
 */
export type TelemetryErrorCode =
  | 'config_invalid'
  | 'slo_definitions_invalid'
  | 'already_started'
  | 'export_failed'
  | 'flush_timeout';

/**
 * The HTTP status each code maps to by default.
 *
 * @example
 * ```ts
 * TelemetryErrorStatus.flush_timeout; // 504
 * ```
 */
export const TelemetryErrorStatus: Readonly<Record<TelemetryErrorCode, number>> = Object.freeze({
  config_invalid: 500,
  slo_definitions_invalid: 500,
  already_started: 500,
  export_failed: 503,
  flush_timeout: 504,
});

const BRAND = Symbol.for('@amas/otel/error');

/** Options of the {@link TelemetryError} constructor. */
export interface TelemetryErrorOptions {
  /** HTTP status; defaults to the status of the code. */
  status?: number;
  /** HTTP headers an adapter sends with the error response (for example `WWW-Authenticate`). */
  headers?: Record<string, string>;
  /** The underlying error, kept for logs; never sent to clients. */
  cause?: unknown;
}

/**
 * The one error family of `@amas/otel`: every failure while setting up or using telemetry is one of these,
 * with a stable {@link TelemetryErrorCode}, an HTTP `status` and optional response `headers`.
 * Messages never contain tokens, secrets or stack traces of other errors.
 *
 * @example
 * ```ts
 * try {
 *   // ...
 * } catch (err) {
 *   if (isTelemetryError(err) && err.code === 'config_invalid') {
 *     res.status(err.status).set(err.headers).json({ error: err.code });
 *   }
 * }
 * ```
 */
export class TelemetryError extends Error {
  override readonly name = 'TelemetryError';
  /** Stable, machine-readable reason. */
  readonly code: TelemetryErrorCode;
  /** HTTP status an adapter answers with. */
  readonly status: number;
  /** HTTP headers an adapter sends with the response. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: TelemetryErrorCode, message: string, options: TelemetryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? TelemetryErrorStatus[code];
    this.headers = Object.freeze({ ...options.headers });
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** The JSON body adapters send: the code and the message, nothing else. */
  toJSON(): { error: TelemetryErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}

/**
 * Tells whether a value is a {@link TelemetryError}. Works across the ESM and CommonJS copies of the
 * package (where `instanceof` does not), because it checks a global symbol brand.
 *
 * @example
 * ```ts
 * if (isTelemetryError(err)) console.warn(err.code);
 * ```
 */
export function isTelemetryError(value: unknown): value is TelemetryError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
