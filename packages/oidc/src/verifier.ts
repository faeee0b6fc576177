import { type Span, SpanStatusCode } from '@opentelemetry/api';
import { extractToken } from './bearer.js';
import { authError, type ChallengeContext } from './challenge.js';
import { checkClaims, claimRules } from './claims.js';
import type { RemoteContext } from './discovery.js';
import { isOidcError, type OidcError, OidcErrorStatus } from './errors.js';
import { createKeySource } from './jwks.js';
import { importFor } from './keys.js';
import { claimMessage, MESSAGES } from './messages.js';
import { type ResolvedConfig, resolveOptions } from './options.js';
import { buildPrincipal } from './principal.js';
import { SETTLE_REQUEST, type SettleRequest } from './settle.js';
import { type SignatureCheck, SignatureMismatch } from './signature.js';
import { oidcTracer, QUIET_SPAN } from './spans.js';
import { configuredEntry, type IssuerEntry, ResolvedIssuers } from './tenants.js';
import { type ParsedToken, parseToken } from './token.js';
import { TokenCache } from './token-cache.js';
import type {
  ConfirmationClaim,
  IssuerHealth,
  JwtClaims,
  Principal,
  RequestLike,
  Verifier,
  VerifierHealth,
  VerifierOptions,
  VerifyRequestOptions,
} from './types.js';

interface CacheEntry<TClaims> {
  readonly principal: Principal<TClaims>;
  readonly exp: number | undefined;
  readonly nbf: number | undefined;
  readonly iat: number | undefined;
  readonly expiresAtMs: number;
  /** The issuer entry the token was verified under: a dropped or expired entry drops the token. */
  readonly issuer: IssuerEntry;
  readonly keyId: string;
}

const SAFE_ATTRIBUTE = /^[\x21-\x7e]{1,128}$/;

/**
 * Maps a failure of the signature check to a code of this package, without reusing jose's message
 * (it may quote input). The claims are checked by this package ({@link checkClaims}), not by jose.
 */
function signatureFailure(err: unknown, ctx: ChallengeContext): OidcError {
  const withCause = { ...ctx, cause: err };
  switch ((err as { code?: string }).code) {
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return authError('algorithm_not_allowed', MESSAGES.algorithm_not_allowed, withCause);
    case 'ERR_JWS_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return authError('token_malformed', MESSAGES.token_malformed, withCause);
    default:
      return authError('signature_invalid', MESSAGES.signature_invalid, withCause);
  }
}

/**
 * Creates a verifier of OIDC/JWT bearer access tokens: the framework-free core of `@amas/oidc`.
 * Options are validated here, once; a mistake throws {@link OidcError} `config_invalid` naming the
 * option. The verifier keeps the JWKS of each issuer and the verified-token cache; nothing is
 * fetched until {@link Verifier.warmUp} or the first token of an allowed issuer.
 *
 * @example
 * ```ts
 * import { createVerifier } from '@amas/oidc';
 *
 * const verifier = createVerifier({
 *   issuer: 'https://login.example.com/',
 *   audience: 'https://api.example.com',
 * });
 * await verifier.warmUp();
 * const principal = await verifier.verifyRequest({ headers: req.headers });
 * console.log(principal.subject, principal.scopes);
 * ```
 */
export function createVerifier<TClaims = JwtClaims>(options: VerifierOptions<TClaims>): Verifier<TClaims> {
  const config: ResolvedConfig = resolveOptions(options as VerifierOptions<unknown>);
  const { tracer, maybeRecording } = oidcTracer('@amas/oidc');
  const controller = new AbortController();
  const remote: RemoteContext = { config, signal: controller.signal };
  const ctx: ChallengeContext = { realm: config.realm };
  const rules = claimRules(config);
  const tolerance = config.clockTolerance;

  const configured = new Map<string, IssuerEntry>();
  for (const issuer of config.issuers) {
    configured.set(issuer.issuer, configuredEntry(issuer, createKeySource(issuer, remote, tracer)));
  }
  const tenants = config.resolver
    ? new ResolvedIssuers(
        config.resolver,
        config,
        controller.signal,
        (issuer) => createKeySource(issuer, remote, tracer),
        ctx,
      )
    : undefined;
  const cache = config.cache ? new TokenCache<CacheEntry<TClaims>>(config.cache.maxEntries) : undefined;
  const maxAgeMs = config.cache ? config.cache.maxAge * 1000 : 0;
  let closed = false;

  const closedError = () =>
    authError('jwks_unavailable', 'The verifier is closed.', { ...ctx, retryAfter: config.jwks.cooldown });

  function resolveIssuer(iss: string): Promise<IssuerEntry> {
    if (!tenants) return Promise.reject(authError('issuer_mismatch', MESSAGES.issuer_mismatch, ctx));
    return tenants.get(iss);
  }

  function checkCachedTimes(entry: CacheEntry<TClaims>, nowMs: number, token: string): void {
    const now = Math.floor(nowMs / 1000);
    if (entry.exp !== undefined && entry.exp <= now - tolerance) {
      cache?.delete(token);
      throw authError('token_expired', MESSAGES.token_expired, ctx);
    }
    if (entry.nbf !== undefined && entry.nbf > now + tolerance) {
      throw authError('token_not_yet_valid', MESSAGES.token_not_yet_valid, ctx);
    }
    if (config.maxTokenAge !== undefined && entry.iat !== undefined) {
      if (now - entry.iat - tolerance > config.maxTokenAge) {
        cache?.delete(token);
        throw authError('token_expired', MESSAGES.token_expired, ctx);
      }
    }
  }

  /**
   * A token with `cnf` (RFC 7800) is bound to a key its holder must prove; this library does not see
   * the proof, so by default such a token is refused rather than honoured as a bearer token.
   */
  function confirmationOf(payload: JwtClaims): ConfirmationClaim | undefined {
    if (!Object.hasOwn(payload, 'cnf')) return undefined;
    if (config.senderConstrained === 'reject') {
      throw authError('token_sender_constrained', MESSAGES.token_sender_constrained, ctx);
    }
    const { cnf } = payload;
    if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) {
      throw authError('claim_invalid', 'The "cnf" claim is missing or invalid.', ctx);
    }
    return cnf;
  }

  const customChecks = config.claimsSchema !== undefined || Object.keys(config.claimValidators).length > 0;

  async function validateClaims(payload: JwtClaims): Promise<TClaims> {
    for (const [name, validate] of Object.entries(config.claimValidators)) {
      let ok = false;
      try {
        ok = (await validate(Object.hasOwn(payload, name) ? payload[name] : undefined, payload)) === true;
      } catch (cause) {
        throw authError('claim_invalid', claimMessage(name), { ...ctx, cause });
      }
      if (!ok) throw authError('claim_invalid', claimMessage(name), ctx);
    }
    const schema = config.claimsSchema;
    if (!schema) return payload as TClaims;
    let result: Awaited<ReturnType<(typeof schema)['~standard']['validate']>>;
    try {
      result = await schema['~standard'].validate(payload);
    } catch (cause) {
      throw authError('claim_invalid', 'The token claims do not match the expected schema.', {
        ...ctx,
        cause,
      });
    }
    if (result.issues) {
      throw authError('claim_invalid', 'The token claims do not match the expected schema.', {
        ...ctx,
        cause: result.issues,
      });
    }
    return result.value as TClaims;
  }

  /**
   * Verifies the signature and answers the identity of the key that verified it. Asymmetric
   * algorithms are verified with `node:crypto` on keys jose imported, HMAC with jose's
   * `compactVerify` (`signature.ts`, ADR 0017); either way over the very segments
   * {@link parseToken} decoded, so the claims are then checked once, by {@link checkClaims}.
   */
  async function verifyWithKeys(token: string, parsed: ParsedToken, issuer: IssuerEntry): Promise<string> {
    const { source } = issuer;
    const { alg, kid } = parsed;
    if (!source.allows(alg)) throw authError('algorithm_not_allowed', MESSAGES.algorithm_not_allowed, ctx);
    const keys = source.freshKeys(alg, kid) ?? (await source.keysFor(alg, kid));
    // Without a kid, trying every key would multiply the work an attacker causes per request.
    if (kid === undefined && keys.length > 1) {
      throw authError('key_not_found', 'The token has no kid and several keys of the issuer match.', ctx);
    }
    // Discovery may have narrowed the algorithms while the keys were fetched.
    if (!source.allows(alg)) throw authError('algorithm_not_allowed', MESSAGES.algorithm_not_allowed, ctx);
    let failure: unknown;
    for (const key of keys) {
      let check: SignatureCheck | undefined = key.ready.get(alg);
      if (!check) {
        try {
          check = await importFor(key, alg);
        } catch (cause) {
          failure = cause;
          continue;
        }
      }
      try {
        await check.verify(token, parsed.signedLength, parsed.signature);
        return key.id;
      } catch (err) {
        failure = err;
        if (!(err instanceof SignatureMismatch)) break;
      }
    }
    throw signatureFailure(failure, ctx);
  }

  /** The cached principal of a token, re-checking its time claims and its key; `undefined` on a miss. */
  function cachedPrincipal(token: string, span: Span): Principal<TClaims> | undefined {
    if (!cache || typeof token !== 'string' || token.length > config.maxTokenLength) return undefined;
    const hit = cache.get(token);
    if (!hit) return undefined;
    const nowMs = Date.now();
    const { issuer } = hit;
    if (
      nowMs >= hit.expiresAtMs ||
      issuer.dropped ||
      nowMs >= issuer.expiresAt ||
      !issuer.source.usable(hit.keyId, nowMs)
    ) {
      cache.delete(token);
      return undefined;
    }
    if (nowMs >= issuer.refreshAt) tenants?.renew(issuer, nowMs);
    if (span.isRecording()) {
      const { header } = hit.principal;
      span.setAttributes({
        'amas.oidc.cache': 'hit',
        'amas.oidc.issuer': hit.principal.issuer,
        'amas.oidc.algorithm': header.alg,
      });
      if (header.kid !== undefined && SAFE_ATTRIBUTE.test(header.kid))
        span.setAttribute('amas.oidc.kid', header.kid);
    }
    checkCachedTimes(hit, nowMs, token);
    return hit.principal;
  }

  function failed(err: unknown): OidcError {
    return isOidcError(err)
      ? err
      : authError('signature_invalid', MESSAGES.signature_invalid, { ...ctx, cause: err });
  }

  /** Ends the span of a verification that succeeded. */
  function succeeded(span: Span): void {
    if (span === QUIET_SPAN) return;
    span.setAttribute('amas.oidc.outcome', 'ok');
    span.end();
  }

  /** Ends the span of a verification that failed, and answers the error to reject with. */
  function refused(span: Span, err: unknown): OidcError {
    const error = failed(err);
    if (span === QUIET_SPAN) return error;
    span.setAttribute('amas.oidc.outcome', error.code);
    if (error.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
    span.end();
    return error;
  }

  /** Verifies a token the cache does not hold, and settles the span. */
  async function verifyUncached(token: string, span: Span): Promise<Principal<TClaims>> {
    let principal: Principal<TClaims>;
    try {
      principal = await verifyNew(token, span);
    } catch (err) {
      throw refused(span, err);
    }
    succeeded(span);
    return principal;
  }

  async function verifyNew(token: string, span: Span): Promise<Principal<TClaims>> {
    const recording = span.isRecording();
    if (recording) span.setAttribute('amas.oidc.cache', cache ? 'miss' : 'off');
    const parsed = parseToken(token, config.maxTokenLength, ctx);
    if (recording) {
      span.setAttribute('amas.oidc.algorithm', SAFE_ATTRIBUTE.test(parsed.alg) ? parsed.alg : 'invalid');
      if (parsed.kid !== undefined && SAFE_ATTRIBUTE.test(parsed.kid))
        span.setAttribute('amas.oidc.kid', parsed.kid);
    }
    const issuer = configured.get(parsed.iss) ?? (await resolveIssuer(parsed.iss));
    if (recording) span.setAttribute('amas.oidc.issuer', issuer.config.issuer);
    const keyId = await verifyWithKeys(token, parsed, issuer);
    // The signature covers the very segments parseToken decoded: this is the verified payload.
    const payload = parsed.payload as JwtClaims;
    const nowMs = Date.now();
    checkClaims(payload, parsed.typ, issuer.config.issuer, issuer.config.audience, rules, nowMs, ctx);
    const confirmation = confirmationOf(payload);
    const claims = customChecks ? await validateClaims(payload) : (payload as TClaims);
    // The resolver may have withdrawn the issuer while the keys were fetched.
    if (issuer.withdrawn) throw authError('issuer_mismatch', MESSAGES.issuer_mismatch, ctx);
    const { alg, kid, typ } = parsed;
    const header =
      kid === undefined
        ? typ === undefined
          ? { alg }
          : { alg, typ }
        : typ === undefined
          ? { alg, kid }
          : { alg, kid, typ };
    const principal = buildPrincipal<TClaims>(payload, claims, header, confirmation);
    if (cache && !closed) {
      const exp = typeof payload.exp === 'number' ? payload.exp : undefined;
      const expiresAtMs = Math.min(
        exp === undefined ? Number.POSITIVE_INFINITY : (exp + tolerance) * 1000,
        nowMs + maxAgeMs,
      );
      cache.set(token, {
        principal,
        exp,
        nbf: typeof payload.nbf === 'number' ? payload.nbf : undefined,
        iat: typeof payload.iat === 'number' ? payload.iat : undefined,
        expiresAtMs,
        issuer,
        keyId,
      });
    }
    return principal;
  }

  // A cache hit is answered without awaiting anything: this is the path most requests take.
  // The span is not made active: nothing verify calls needs it as a parent, and an active span costs
  // a context per call even when no SDK is registered. While no SDK was ever registered no span is
  // started at all (QUIET_SPAN stands in for it).
  /** verify(), with a cache hit answered as a value rather than a promise. */
  function settle(token: string): Principal<TClaims> | Promise<Principal<TClaims>> {
    const span = maybeRecording() ? tracer.startSpan('amas.oidc.verify') : QUIET_SPAN;
    try {
      if (closed) throw closedError();
      const hit = cachedPrincipal(token, span);
      if (hit) {
        succeeded(span);
        return hit;
      }
    } catch (err) {
      return Promise.reject(refused(span, err));
    }
    return verifyUncached(token, span);
  }

  function verify(token: string): Promise<Principal<TClaims>> {
    return Promise.resolve(settle(token));
  }

  /** verifyRequest(), with a cache hit (or an optional request without a token) answered as a value. */
  function settleRequest(
    request: RequestLike,
    opts: VerifyRequestOptions | undefined,
  ): Principal<TClaims> | undefined | Promise<Principal<TClaims> | undefined> {
    let token: string | undefined;
    try {
      if (typeof request !== 'object' || request === null || typeof request.headers !== 'object') {
        throw authError('invalid_request', 'The request has no headers.', ctx);
      }
      token = extractToken(request, config, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
    if (token !== undefined) return settle(token);
    if (opts?.optional) return undefined;
    return Promise.reject(authError('token_missing', 'No bearer token was presented.', ctx));
  }

  function verifyRequest(
    request: RequestLike,
    opts?: VerifyRequestOptions,
  ): Promise<Principal<TClaims> | undefined> {
    return Promise.resolve(settleRequest(request, opts));
  }

  function entries(): IssuerEntry[] {
    return tenants ? [...configured.values(), ...tenants.entries()] : [...configured.values()];
  }

  function health(): VerifierHealth {
    const issuers: IssuerHealth[] = entries().map((e) => e.source.health());
    const statuses = new Set(issuers.map((i) => i.status));
    const status: VerifierHealth['status'] =
      closed || statuses.has('down')
        ? 'down'
        : statuses.has('cold')
          ? 'starting'
          : statuses.has('stale') || issuers.some((i) => i.lastError)
            ? 'degraded'
            : 'ok';
    return Object.freeze({
      ready: status === 'ok' || status === 'degraded',
      status,
      issuers: Object.freeze(issuers),
    });
  }

  async function warmUp(): Promise<VerifierHealth> {
    if (closed) throw closedError();
    const results = await Promise.allSettled([...configured.values()].map((e) => e.source.warmUp()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      const reason: unknown = failed.reason;
      if (isOidcError(reason) && OidcErrorStatus[reason.code] === 503) throw reason;
      throw authError('jwks_unavailable', 'The signing keys of the issuer are unavailable.', {
        ...ctx,
        retryAfter: config.jwks.cooldown,
        cause: reason,
      });
    }
    return health();
  }

  async function close(): Promise<void> {
    closed = true;
    controller.abort();
    cache?.clear();
    tenants?.clear();
  }

  return Object.freeze({
    verify,
    verifyRequest: verifyRequest as Verifier<TClaims>['verifyRequest'],
    warmUp,
    health,
    close,
    [SETTLE_REQUEST]: settleRequest as SettleRequest<TClaims>,
  });
}
