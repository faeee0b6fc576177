/**
 * The claims of a verified JWT access token: the registered ones typed, every other claim `unknown`.
 *
 * @example
 * ```ts
 * const claims: JwtClaims = principal.claims;
 * if (typeof claims.tenant === 'string') console.log(claims.tenant);
 * ```
 */
export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  scope?: string;
  scp?: string | string[];
  client_id?: string;
  azp?: string;
  /** Confirmation (RFC 7800): the key a sender-constrained token is bound to. See `senderConstrained`. */
  cnf?: ConfirmationClaim;
  [claim: string]: unknown;
}

/**
 * The `cnf` claim of a sender-constrained token (RFC 7800): the key the client must prove it holds.
 * `jkt` is the JWK thumbprint of a DPoP key (RFC 9449), `x5t#S256` the thumbprint of an mTLS client
 * certificate (RFC 8705). Members are as the issuer sent them: nothing here has been checked against
 * the request.
 *
 * @example
 * ```ts
 * const jkt = principal.confirmation?.jkt; // compare with the thumbprint of the DPoP proof's key
 * ```
 */
export interface ConfirmationClaim {
  jkt?: unknown;
  'x5t#S256'?: unknown;
  [member: string]: unknown;
}

/**
 * The protected header of a verified token, reduced to what a service may need.
 *
 * @example
 * ```ts
 * console.log(principal.header.alg, principal.header.kid);
 * ```
 */
export interface TokenHeader {
  readonly alg: string;
  readonly kid?: string;
  readonly typ?: string;
}

/**
 * Who is calling: the result of a successful verification. Frozen (claims included), because a
 * cached principal is shared by every request that presents the same token.
 *
 * @example
 * ```ts
 * const principal = await verifier.verify(token);
 * console.log(principal.subject, principal.scopes, principal.clientId);
 * ```
 */
export interface Principal<TClaims = JwtClaims> {
  /** `sub`. */
  readonly subject: string | undefined;
  /** `iss`, always one of the allowed issuers. */
  readonly issuer: string;
  /** `aud`, as a list. */
  readonly audience: readonly string[];
  /** Scopes from `scope` (space-delimited) and `scp` (list or space-delimited), deduplicated. */
  readonly scopes: readonly string[];
  /** `client_id` (RFC 9068), else `azp`. */
  readonly clientId: string | undefined;
  /** `exp`, in seconds since the epoch. */
  readonly expiresAt: number | undefined;
  /** `iat`, in seconds since the epoch. */
  readonly issuedAt: number | undefined;
  /** `jti`. */
  readonly tokenId: string | undefined;
  /** The verified claims; the output of `claimsSchema` when one is configured. */
  readonly claims: Readonly<TClaims>;
  /** The token's protected header (`alg`, `kid`, `typ`). */
  readonly header: TokenHeader;
  /**
   * The token's `cnf` claim (RFC 7800), taken from the verified payload (a claims schema cannot remove
   * it). Only ever set when `senderConstrained` is `'allow'`: by default such tokens are refused.
   * A service that allows them must prove the binding itself (DPoP proof, mTLS certificate).
   */
  readonly confirmation?: Readonly<ConfirmationClaim> | undefined;
}

/**
 * A minimal Standard Schema (v1) interface, implemented by zod 3.24+/4, valibot and arktype.
 * `claimsSchema` accepts any of them, so `@amas/oidc` does not force one validation library on you.
 *
 * @example
 * ```ts
 * import * as z from 'zod';
 * const schema: StandardSchemaV1<unknown, { tenant: string }> = z.object({ tenant: z.string() });
 * ```
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) =>
      | { readonly value: Output; readonly issues?: undefined }
      | { readonly issues: ReadonlyArray<{ readonly message: string }> }
      | Promise<
          | { readonly value: Output; readonly issues?: undefined }
          | { readonly issues: ReadonlyArray<{ readonly message: string }> }
        >;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/**
 * A public JSON Web Key as found in a JWKS (`RSA`, `EC` or `OKP`; private members are refused).
 *
 * @example
 * ```ts
 * const key: PublicJwk = { kty: 'EC', crv: 'P-256', x: '...', y: '...', kid: 'k1', alg: 'ES256' };
 * ```
 */
export interface PublicJwk {
  /** Required at run time; optional in the type so that jose's `JWK` objects can be passed as they are. */
  kty?: string | undefined;
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  crv?: string;
  n?: string;
  e?: string;
  x?: string;
  y?: string;
  [member: string]: unknown;
}

/**
 * Where one issuer's verification keys come from, and what is allowed for it. Give at most one of
 * `jwksUri`, `keys` and `secret`; with none of them the keys are found through OIDC discovery.
 *
 * @example
 * ```ts
 * const tenant: IssuerOptions = { issuer: 'https://login.example.com/t1', jwksUri: 'https://login.example.com/t1/jwks' };
 * ```
 */
export interface IssuerOptions {
  /** The exact `iss` value (no normalisation: a trailing slash matters). */
  issuer: string;
  /** The JWKS URL; skips discovery. */
  jwksUri?: string | undefined;
  /** The discovery document URL; defaults to `<issuer>/.well-known/openid-configuration`. */
  discoveryUri?: string | undefined;
  /** Static public keys (a JWKS object or a list of JWKs); nothing is fetched. */
  keys?: PublicJwk[] | { keys: PublicJwk[] } | undefined;
  /** An HMAC secret (at least 32 bytes); only `HS256`/`HS384`/`HS512` are then allowed for this issuer. */
  secret?: string | Uint8Array | undefined;
  /** Allowed `alg` values for this issuer; defaults to the verifier's `algorithms`. */
  algorithms?: readonly string[] | undefined;
  /** Overrides the verifier's `audience` for this issuer (multi-tenant APIs). */
  audience?: string | readonly string[] | undefined;
}

/**
 * Decides, from the unverified `iss` of a token, whether that issuer is allowed and where its keys
 * are. Return `undefined`/`false` to reject (nothing is fetched), `true` to accept with discovery,
 * or the issuer's options; throw (or reject) only for an outage of your tenant store (503).
 * Acceptances are kept for `resolverCache.ttl` (at most `maxIssuers` issuers) and asked again before
 * they expire; refusals are kept for `resolverCache.refusalTtl`, failures for
 * `resolverCache.failureCooldown`. At most one call per `iss` is in flight, and at most
 * `resolverCache.maxPending` for issuers not yet accepted.
 *
 * @example
 * ```ts
 * const resolver: IssuerResolver = (iss) => /^https:\/\/login\.example\.com\/[a-z0-9-]{1,40}$/.test(iss);
 * ```
 */
export type IssuerResolver = (
  iss: string,
) => IssuerOptions | boolean | undefined | Promise<IssuerOptions | boolean | undefined>;

/**
 * JWKS cache policy. All durations are in seconds.
 *
 * @example
 * ```ts
 * createVerifier({ issuer, audience, jwks: { cacheTtl: 300, staleIfError: 7200 } });
 * ```
 */
export interface JwksOptions {
  /** How long a fetched JWKS is fresh. Default 600. */
  cacheTtl?: number;
  /** Refresh in the background this long before the JWKS expires. Default 60. */
  refreshAhead?: number;
  /**
   * Minimum time between two fetches caused by unknown `kid`s or failures. A newly published key is
   * accepted at most `cooldown` plus one fetch after publication. Default 2.
   */
  cooldown?: number;
  /** How long a `kid` absent from the last fetched JWKS is answered 401 without waiting or fetching. Default 2. */
  negativeCacheTtl?: number;
  /** How long expired keys keep verifying while the endpoint is down or answers garbage. Default 3600. */
  staleIfError?: number;
  /** Timeout of one fetch (discovery or JWKS), body included. Default 5. */
  timeout?: number;
  /** Largest accepted response body, in bytes. Default 512 KiB. */
  maxBytes?: number;
  /** Largest accepted number of keys in one JWKS. Default 100. */
  maxKeys?: number;
  /** How long a discovery document is reused before it is fetched again. Default 3600. */
  discoveryTtl?: number;
}

/**
 * The verified-token cache. Entries are keyed by the exact token, expire no later than `exp`, have
 * their time claims re-checked on every hit and are dropped when their key leaves the JWKS.
 *
 * @example
 * ```ts
 * createVerifier({ issuer, audience, cache: { maxEntries: 50_000 } });
 * createVerifier({ issuer, audience, cache: false });
 * ```
 */
export interface TokenCacheOptions {
  /** Upper bound on cached tokens (LRU). Default 10 000. */
  maxEntries?: number;
  /** Upper bound on how long one entry lives, in seconds, whatever its `exp`. Default 600. */
  maxAge?: number;
}

/**
 * How long the answers of an issuer resolver are kept. Durations in seconds.
 *
 * @example
 * ```ts
 * createVerifier({ issuer: resolver, audience, resolverCache: { ttl: 120, refusalTtl: 10, maxPending: 16 } });
 * ```
 */
export interface ResolverCacheOptions {
  /**
   * How long an accepted issuer is trusted before the resolver is asked again. It is asked again in
   * the background during the last fifth of this time; once it expires, requests of that issuer
   * (tokens in the verified-token cache included) wait for a new answer. An issuer the resolver stops
   * accepting stops verifying at most this long after the change. Default 300.
   */
  ttl?: number;
  /** How long a refusal is remembered, so that repeated unknown `iss` values do not each call the resolver. `0` remembers none. Default 30. */
  refusalTtl?: number;
  /** Upper bound on remembered refusals, and separately on remembered failures (oldest dropped first). Default 1000. */
  maxRefusals?: number;
  /**
   * How long a failed resolver call (a throw, a rejection, no answer within `jwks.timeout`, invalid
   * options) is remembered: meanwhile that issuer's requests get 503 `discovery_failed` with
   * `Retry-After`, without calling the resolver, and a failing renewal of an accepted issuer is
   * retried at most this often. A failure is never remembered as a refusal. `0` remembers none
   * (at most one call per issuer is still in flight). 0 to 300. Default 2.
   */
  failureCooldown?: number;
  /**
   * Upper bound on resolver calls in flight together for issuers the verifier does not hold (1 to
   * 10 000). A request that would start one more gets 503 `discovery_failed` with `Retry-After` at
   * once; it is never queued. Renewals of accepted issuers are not counted, so a flood of invented
   * issuers never stops an active tenant from verifying. Default 32.
   */
  maxPending?: number;
}

/**
 * A plain request shape, so the core needs no framework: Node's `IncomingMessage`, Express's `req`
 * and Koa's `ctx.request` all fit.
 *
 * @example
 * ```ts
 * await verifier.verifyRequest({ headers: { authorization: `Bearer ${token}` } });
 * ```
 */
export interface RequestLike {
  headers: Record<string, string | string[] | undefined>;
  /** The request target (path and query); only read when query-string tokens are enabled. */
  url?: string | undefined;
  /** Parsed cookies (for example from `cookie-parser`); otherwise the `Cookie` header is parsed. */
  cookies?: Record<string, unknown> | undefined;
  /**
   * Node's `rawHeaders` (name, value, name, value, ...). Node keeps only the first of several
   * `Authorization` headers in `headers`; with `rawHeaders` a second one is seen and refused (400).
   */
  rawHeaders?: readonly string[] | undefined;
}

/**
 * Where tokens are taken from. A request that carries a token in more than one enabled place is
 * rejected with 400 `invalid_request`.
 *
 * @example
 * ```ts
 * createVerifier({ issuer, audience, tokenSources: { header: true, cookie: 'access_token' } });
 * ```
 */
export interface TokenSources {
  /** `Authorization: Bearer <token>` (scheme case-insensitive). Default true. */
  header?: boolean;
  /** The name of a cookie that holds the token. Off by default. */
  cookie?: string | undefined;
  /** Query-string tokens (`access_token`, or the name given). Off by default: URLs end up in logs. */
  query?: boolean | string;
  /** Your own extractor; return `undefined` when the request has no token there. */
  custom?: ((request: RequestLike) => string | undefined) | undefined;
}

/**
 * Checks one claim after the signature and the registered claims are verified. Return `false` to
 * reject the token with 401 `claim_invalid`. Must depend on the claims only (results are cached).
 *
 * @example
 * ```ts
 * const validators: Record<string, ClaimValidator> = { tenant: (v) => v === 'acme' };
 * ```
 */
export type ClaimValidator = (value: unknown, claims: JwtClaims) => boolean | Promise<boolean>;

/**
 * Options of {@link createVerifier}. Only `issuer` and `audience` are required.
 *
 * @example
 * ```ts
 * const options: VerifierOptions = { issuer: 'https://login.example.com/', audience: 'https://api.example.com' };
 * ```
 */
export interface VerifierOptions<TClaims = JwtClaims> {
  /** One issuer, a list, issuer options, or a resolver for multi-tenant services. */
  issuer: string | IssuerOptions | ReadonlyArray<string | IssuerOptions> | IssuerResolver;
  /** The audience(s) this API accepts; a token must name at least one. */
  audience: string | readonly string[];
  /** Shorthand for a single string `issuer`: its JWKS URL (skips discovery). */
  jwksUri?: string | undefined;
  /** Shorthand for a single string `issuer`: its static public keys. */
  keys?: PublicJwk[] | { keys: PublicJwk[] } | undefined;
  /** Shorthand for a single string `issuer`: an HMAC secret (never mixed with public keys). */
  secret?: string | Uint8Array | undefined;
  /** Allowed `alg` values. Default: every asymmetric JWS algorithm (`RS*`, `PS*`, `ES*`, `EdDSA`, `Ed25519`). */
  algorithms?: readonly string[] | undefined;
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. Default 5. */
  clockTolerance?: number | undefined;
  /** Reject tokens whose `iat` is older than this, in seconds (requires `iat`). */
  maxTokenAge?: number | undefined;
  /** Claims that must be present (`exp` always is unless `requireExp` is false). */
  requiredClaims?: readonly string[] | undefined;
  /** Require `exp`. Default true. */
  requireExp?: boolean | undefined;
  /**
   * `'rfc9068'`: require `typ: at+jwt` and the claims RFC 9068 requires (`iss`, `exp`, `aud`, `sub`,
   * `client_id`, `iat`, `jti`), which rejects ID tokens presented as access tokens. Default `'jwt'`.
   */
  profile?: 'jwt' | 'rfc9068' | undefined;
  /** Per-claim checks; see {@link ClaimValidator}. */
  claimValidators?: Record<string, ClaimValidator> | undefined;
  /** A Standard Schema (zod, valibot, ...) that validates the claims and types `principal.claims`. */
  claimsSchema?: StandardSchemaV1<unknown, TClaims> | undefined;
  /** JWKS and discovery cache policy. */
  jwks?: JwksOptions | undefined;
  /** The verified-token cache; `false` turns it off. */
  cache?: TokenCacheOptions | false | undefined;
  /** Where tokens are read from by `verifyRequest`. */
  tokenSources?: TokenSources | undefined;
  /** Largest accepted token, in characters. Default 8192, at most 16000. */
  maxTokenLength?: number | undefined;
  /** The `realm` of `WWW-Authenticate` challenges. */
  realm?: string | undefined;
  /** Allow `http:` discovery and JWKS URLs on hosts other than loopback. Default false. */
  allowInsecureHttp?: boolean | undefined;
  /** Upper bound on issuers kept by a resolver. Default 100. */
  maxIssuers?: number | undefined;
  /** How long a resolver's answers are kept; only with a resolver `issuer`. */
  resolverCache?: ResolverCacheOptions | undefined;
  /**
   * Tokens with a `cnf` claim (RFC 7800: DPoP `jkt`, mTLS `x5t#S256`) are bound to a key the client
   * must prove it holds, and this library does not check that proof. `'reject'` (default) refuses
   * them with 401 `token_sender_constrained`, so a stolen bound token is not a bearer token here;
   * `'allow'` accepts them and exposes `principal.confirmation`, for services that verify the
   * binding themselves.
   */
  senderConstrained?: 'reject' | 'allow' | undefined;
  /** The `fetch` used for discovery and JWKS (for proxies). Default: the global `fetch`. */
  fetch?: typeof fetch | undefined;
}

/**
 * Options of {@link Verifier.verifyRequest}.
 *
 * @example
 * ```ts
 * const principal = await verifier.verifyRequest(req, { optional: true }); // undefined without a token
 * ```
 */
export interface VerifyRequestOptions {
  /** A request without any token resolves to `undefined` instead of failing. Invalid tokens still fail. */
  optional?: boolean;
}

/**
 * The readiness of one issuer's key source.
 *
 * @example
 * ```ts
 * for (const i of verifier.health().issuers) console.log(i.issuer, i.status, i.keys);
 * ```
 */
export interface IssuerHealth {
  readonly issuer: string;
  /** Where the keys come from. */
  readonly source: 'discovery' | 'jwks' | 'static' | 'secret';
  /** `ok`: fresh keys; `stale`: serving expired keys (stale-if-error); `down`: no usable keys; `cold`: not fetched yet. */
  readonly status: 'ok' | 'stale' | 'down' | 'cold';
  /** Usable keys held. */
  readonly keys: number;
  /** When the keys were last fetched (ISO 8601). */
  readonly fetchedAt?: string;
  /** The last failure, if the last fetch failed. Never contains key material. */
  readonly lastError?: { readonly at: string; readonly reason: string };
}

/**
 * What a readiness endpoint needs: `ready` is true when every configured issuer can verify tokens.
 *
 * @example
 * ```ts
 * app.get('/ready', (_req, res) => { const h = verifier.health(); res.status(h.ready ? 200 : 503).json(h); });
 * ```
 */
export interface VerifierHealth {
  readonly ready: boolean;
  /** `ok`, `degraded` (serving stale keys or the last refresh failed), `down`, or `starting`. */
  readonly status: 'ok' | 'degraded' | 'down' | 'starting';
  readonly issuers: readonly IssuerHealth[];
}

/**
 * A verifier: the framework-free core of `@amas/oidc`, returned by {@link createVerifier}.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({ issuer: 'https://login.example.com/', audience: 'https://api.example.com' });
 * await verifier.warmUp();
 * const principal = await verifier.verifyRequest({ headers: req.headers });
 * ```
 */
export interface Verifier<TClaims = JwtClaims> {
  /** Verifies a compact JWT access token. Rejects with an {@link OidcError}. */
  verify(token: string): Promise<Principal<TClaims>>;
  /** Extracts the token from a request-like object (see `tokenSources`) and verifies it. */
  verifyRequest(request: RequestLike, options?: { optional?: false }): Promise<Principal<TClaims>>;
  verifyRequest(request: RequestLike, options: VerifyRequestOptions): Promise<Principal<TClaims> | undefined>;
  /** Fetches discovery documents and JWKS of every configured issuer now. Rejects if any cannot be fetched. */
  warmUp(): Promise<VerifierHealth>;
  /** A synchronous readiness report, for a health endpoint. */
  health(): VerifierHealth;
  /** Aborts fetches in flight and drops every cache. Later calls reject with 503 `jwks_unavailable`. */
  close(): Promise<void>;
}

/**
 * `all` (default): every listed scope is required; `any`: one of them suffices.
 *
 * @example
 * ```ts
 * checkScopes(principal, ['tools:read', 'tools:admin'], { mode: 'any' });
 * ```
 */
export interface ScopeCheckOptions {
  mode?: 'all' | 'any';
}

/**
 * One claim requirement: a value the claim must equal, `{ includes }` for a claim that is a list or
 * a space-delimited string, `{ oneOf }`, or a predicate.
 *
 * @example
 * ```ts
 * const req: ClaimRequirement = { includes: 'admin' };
 * ```
 */
export type ClaimRequirement =
  | string
  | number
  | boolean
  | { readonly equals: unknown }
  | { readonly includes: string | number }
  | { readonly oneOf: readonly unknown[] }
  | ((value: unknown, claims: JwtClaims) => boolean);

/**
 * Claim requirements by claim name, or one predicate over the whole principal.
 *
 * @example
 * ```ts
 * const spec: ClaimRequirements = { tenant: 'acme', roles: { includes: 'admin' } };
 * const predicate: ClaimRequirements = (p) => p.subject?.startsWith('agent-') === true;
 * ```
 */
export type ClaimRequirements =
  | Readonly<Record<string, ClaimRequirement>>
  | ((principal: Principal<JwtClaims>) => boolean);
