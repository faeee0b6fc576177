import { authError, type ChallengeContext } from './challenge.js';
import { isOidcError } from './errors.js';
import type { ResolvedConfig } from './options.js';
import type { RequestLike } from './types.js';

function header(request: RequestLike, name: string): string | string[] | undefined {
  const headers = request.headers ?? {};
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key];
  return undefined;
}

/** How many `Authorization` headers Node's `rawHeaders` hold (Node's `headers` keeps only the first). */
function rawAuthorizationCount(raw: readonly unknown[]): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    // Length and first letter first: most names are rejected without allocating a lower-case copy.
    if (
      typeof name === 'string' &&
      name.length === 13 &&
      (name.charCodeAt(0) | 0x20) === 0x61 &&
      name.toLowerCase() === 'authorization'
    )
      count++;
  }
  return count;
}

function fromAuthorization(request: RequestLike, ctx: ChallengeContext): string | undefined {
  const value: unknown = header(request, 'authorization');
  if (value === undefined) return undefined;
  const raw = request.rawHeaders;
  if (Array.isArray(raw) && rawAuthorizationCount(raw) > 1) {
    throw authError('invalid_request', 'The request carries more than one Authorization header.', ctx);
  }
  if (typeof value === 'string') return fromValue(value, ctx);
  if (Array.isArray(value) && value.length <= 1) {
    return value[0] === undefined ? undefined : fromAuthorizationValue(value[0], ctx);
  }
  throw authError('invalid_request', 'The request carries more than one Authorization header.', ctx);
}

function fromAuthorizationValue(value: unknown, ctx: ChallengeContext): string | undefined {
  if (typeof value !== 'string')
    throw authError('invalid_request', 'The Authorization header is malformed.', ctx);
  return fromValue(value, ctx);
}

const isSpace = (c: number) => c === 0x20 || c === 0x09;
const BEARER = 'bearer';

/** `value` has "bearer" in any case at `at` (compared without allocating). */
function isBearer(value: string, at: number): boolean {
  for (let k = 0; k < 6; k++) {
    if ((value.charCodeAt(at + k) | 0x20) !== BEARER.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * Parses `Bearer <token>` (scheme case-insensitive, spaces or tabs around) by hand: linear, no
 * regular expression that could backtrack on a 16 KiB header of spaces. The token's characters are
 * checked by the verifier, which refuses anything that is not strict base64url.
 */
function fromValue(value: string, ctx: ChallengeContext): string | undefined {
  let start = 0;
  let end = value.length;
  while (start < end && isSpace(value.charCodeAt(start))) start++;
  while (end > start && isSpace(value.charCodeAt(end - 1))) end--;
  let i = start;
  while (i < end && !isSpace(value.charCodeAt(i))) i++;
  if (i - start !== 6 || !isBearer(value, start)) return undefined;
  while (i < end && isSpace(value.charCodeAt(i))) i++;
  if (i === end) throw authError('invalid_request', 'The Bearer authorization has no token.', ctx);
  return value.slice(i, end);
}

function fromCookie(request: RequestLike, name: string, ctx: ChallengeContext): string | undefined {
  const found: string[] = [];
  const raw = header(request, 'cookie');
  for (const line of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      let v = pair.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
      if (v) found.push(v);
    }
  }
  // Cookie parsers keep one of duplicate cookies; which one differs between them, so refuse both.
  if (found.length > 1) {
    throw authError('invalid_request', 'The request carries the token cookie more than once.', ctx);
  }
  const parsed = request.cookies;
  if (parsed && Object.hasOwn(parsed, name)) {
    const v = parsed[name];
    if (typeof v === 'string' && v.length > 0) return v;
    if (v !== undefined && v !== '')
      throw authError('invalid_request', 'The token cookie is malformed.', ctx);
  }
  return found[0];
}

function fromQuery(request: RequestLike, name: string, ctx: ChallengeContext): string | undefined {
  const url = request.url;
  if (!url) return undefined;
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const values = new URLSearchParams(url.slice(q + 1).split('#')[0]).getAll(name).filter((v) => v.length > 0);
  if (values.length > 1)
    throw authError('invalid_request', 'The query string carries the token more than once.', ctx);
  return values[0];
}

/**
 * Finds the bearer token of a request in the enabled sources (Authorization header, cookie, query
 * string, custom extractor). Returns `undefined` when there is none; throws 400 `invalid_request`
 * when there is more than one (RFC 6750 section 2: a client must not use more than one method).
 */
export function extractToken(
  request: RequestLike,
  config: ResolvedConfig,
  ctx: ChallengeContext,
): string | undefined {
  try {
    return extract(request, config, ctx);
  } catch (err) {
    if (isOidcError(err)) throw err;
    // A request-like object of the wrong shape (a header that is a number, a getter that throws).
    throw authError('invalid_request', 'The request could not be read.', { ...ctx, cause: err });
  }
}

function extract(request: RequestLike, config: ResolvedConfig, ctx: ChallengeContext): string | undefined {
  const { header: useHeader, cookie, query, custom } = config.tokenSources;
  if (useHeader && cookie === undefined && query === undefined && !custom)
    return fromAuthorization(request, ctx);
  const found: string[] = [];
  if (useHeader) {
    const t = fromAuthorization(request, ctx);
    if (t !== undefined) found.push(t);
  }
  if (cookie !== undefined) {
    const t = fromCookie(request, cookie, ctx);
    if (t !== undefined) found.push(t);
  }
  if (query !== undefined) {
    const t = fromQuery(request, query, ctx);
    if (t !== undefined) found.push(t);
  }
  if (custom) {
    let t: unknown;
    try {
      t = custom(request);
    } catch (cause) {
      throw authError('invalid_request', 'The token could not be read from the request.', { ...ctx, cause });
    }
    if (typeof t === 'string' && t.length > 0) found.push(t);
    else if (t !== undefined && t !== null && t !== '') {
      throw authError('invalid_request', 'The token could not be read from the request.', ctx);
    }
  }
  if (found.length > 1) {
    throw authError('invalid_request', 'The request carries a token in more than one place.', ctx);
  }
  return found[0];
}
