import { authError, type ChallengeContext } from './challenge.js';
import type { ResolvedConfig } from './options.js';
import type { RequestLike } from './types.js';

// RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const b64token = /^[A-Za-z0-9\-._~+/]+=*$/;

function header(request: RequestLike, name: string): string | string[] | undefined {
  const headers = request.headers ?? {};
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key];
  return undefined;
}

function fromAuthorization(request: RequestLike, ctx: ChallengeContext): string | undefined {
  const value = header(request, 'authorization');
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length > 1) {
      throw authError('invalid_request', 'The request carries more than one Authorization header.', ctx);
    }
    return value[0] === undefined ? undefined : fromValue(value[0], ctx);
  }
  return fromValue(value, ctx);
}

function fromValue(value: string, ctx: ChallengeContext): string | undefined {
  // Split by hand: a regular expression with optional whitespace on both sides of the token
  // backtracks quadratically on a 16 KiB header of spaces.
  const trimmed = value.trim();
  const gap = trimmed.search(/[ \t]/);
  const scheme = gap < 0 ? trimmed : trimmed.slice(0, gap);
  if (scheme.toLowerCase() !== 'bearer') return undefined;
  const token = gap < 0 ? '' : trimmed.slice(gap).trim();
  if (!token) throw authError('invalid_request', 'The Bearer authorization has no token.', ctx);
  if (!b64token.test(token))
    throw authError('token_malformed', 'The bearer token has invalid characters.', ctx);
  return token;
}

function fromCookie(request: RequestLike, name: string, ctx: ChallengeContext): string | undefined {
  const parsed = request.cookies;
  if (parsed && Object.hasOwn(parsed, name)) {
    const v = parsed[name];
    if (typeof v === 'string' && v.length > 0) return v;
    if (v !== undefined && v !== '')
      throw authError('invalid_request', 'The token cookie is malformed.', ctx);
  }
  const raw = header(request, 'cookie');
  if (raw === undefined) return undefined;
  const found: string[] = [];
  for (const line of Array.isArray(raw) ? raw : [raw]) {
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      let v = pair.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
      if (v) found.push(v);
    }
  }
  if (found.length > 1)
    throw authError('invalid_request', 'The request carries the token cookie more than once.', ctx);
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
export function extractToken(request: RequestLike, config: ResolvedConfig): string | undefined {
  const ctx: ChallengeContext = { realm: config.realm };
  const { header: useHeader, cookie, query, custom } = config.tokenSources;
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
