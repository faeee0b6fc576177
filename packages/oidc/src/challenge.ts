import { OidcError, type OidcErrorCode, OidcErrorStatus } from './errors.js';

/** What the challenge of an error may carry besides its code and message. */
export interface ChallengeContext {
  realm?: string | undefined;
  /** Scopes the resource requires (`insufficient_scope`). */
  scope?: readonly string[] | undefined;
  /** Seconds a client should wait before retrying an outage (`Retry-After`). */
  retryAfter?: number | undefined;
  cause?: unknown;
}

// RFC 6750 section 3: quoted-string values may hold %x20-21 / %x23-5B / %x5D-7E only.
const unsafeQuoted = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;
const unsafeScopeToken = /[^\x21\x23-\x5b\x5d-\x7e]/g;

function quoted(value: string): string {
  return `"${value.replace(unsafeQuoted, '')}"`;
}

/**
 * Builds the `WWW-Authenticate: Bearer ...` value of RFC 6750 for an error code. A request without
 * any token gets a bare challenge (no `error`), as section 3.1 asks.
 */
export function bearerChallenge(
  code: OidcErrorCode,
  description: string,
  ctx: ChallengeContext = {},
): string {
  const params: string[] = [];
  if (ctx.realm !== undefined) params.push(`realm=${quoted(ctx.realm)}`);
  if (code !== 'token_missing') {
    const error =
      code === 'invalid_request'
        ? 'invalid_request'
        : code === 'insufficient_scope'
          ? 'insufficient_scope'
          : 'invalid_token';
    params.push(`error="${error}"`, `error_description=${quoted(description)}`);
  }
  if (code === 'insufficient_scope' && ctx.scope && ctx.scope.length > 0) {
    params.push(`scope=${quoted(ctx.scope.map((s) => s.replace(unsafeScopeToken, '')).join(' '))}`);
  }
  return params.length > 0 ? `Bearer ${params.join(', ')}` : 'Bearer';
}

/**
 * Creates the {@link OidcError} for a code with the headers an adapter must send: the RFC 6750
 * challenge for 400/401/403, `Retry-After` for outages, and `Cache-Control: no-store` always.
 * `message` must be a fixed text: never a token, a key or a value taken from the request.
 */
export function authError(code: OidcErrorCode, message: string, ctx: ChallengeContext = {}): OidcError {
  const status = OidcErrorStatus[code];
  const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
  if (status === 400 || status === 401 || status === 403) {
    headers['WWW-Authenticate'] = bearerChallenge(code, message, ctx);
  } else if (status === 503) {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(ctx.retryAfter ?? 1)));
  }
  return new OidcError(code, message, { headers, cause: ctx.cause });
}
