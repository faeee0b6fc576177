import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { authError } from './challenge.js';
import { Discovery, type RemoteContext } from './discovery.js';
import { isOidcError } from './errors.js';
import { fetchJson } from './fetch-json.js';
import { buildKeySet, candidateKeys, type KeySet, type VerificationKey } from './keys.js';
import type { ResolvedIssuer } from './options.js';
import { type SignatureCheck, signatureCheck } from './signature.js';
import type { IssuerHealth } from './types.js';

/** Where a verifier gets the keys of one issuer. */
export interface KeySource {
  readonly kind: IssuerHealth['source'];
  /** The keys that may verify a token with this `alg` and `kid`. Rejects with an {@link OidcError}. */
  keysFor(alg: string, kid: string | undefined): Promise<readonly VerificationKey[]>;
  /** The same, synchronously, when fresh keys match; `undefined` means: call {@link KeySource.keysFor}. */
  freshKeys(alg: string, kid: string | undefined): readonly VerificationKey[] | undefined;
  /** Whether `alg` is allowed now (discovery may narrow the configured list). */
  allows(alg: string): boolean;
  /** Whether the key with this identity may still verify (for cached tokens). */
  usable(keyId: string, nowMs: number): boolean;
  warmUp(): Promise<void>;
  health(): IssuerHealth;
}

type Trigger = 'cold' | 'unknown_kid' | 'refresh_ahead' | 'stale' | 'warm_up';
const MAX_NEGATIVE_KIDS = 1024;

const keyNotFound = (realm: string | undefined) =>
  authError('key_not_found', 'No key of the issuer matches the token.', { realm });

function reasonOf(err: unknown): string {
  const inner = isOidcError(err) && err.cause !== undefined ? err.cause : err;
  const message = inner instanceof Error ? inner.message : 'unknown failure';
  return message.slice(0, 200);
}

/**
 * The keys of an issuer fetched from its JWKS URL (given, or found through discovery).
 *
 * - Fresh for `cacheTtl`; refreshed in the background from `cacheTtl - refreshAhead` on.
 * - An unknown `kid` causes at most one fetch per `cooldown`, shared by every request that needs it;
 *   a `kid` absent from a fresh JWKS is refused without a fetch for `negativeCacheTtl`.
 * - Expired keys keep verifying for `staleIfError` while refreshes fail (stale-if-error).
 * - With no usable keys and a failing endpoint, requests fail with 503 `jwks_unavailable`.
 */
export class RemoteJwks implements KeySource {
  readonly kind: 'discovery' | 'jwks';
  private set: KeySet | undefined;
  private fetchedAt = 0;
  private lastAttemptEnd = Number.NEGATIVE_INFINITY;
  private lastFailure: { at: number; reason: string; error: unknown } | undefined;
  private inflight: Promise<void> | undefined;
  private readonly negative = new Map<string, number>();
  private readonly discovery: Discovery | undefined;
  private readonly allowed: ReadonlySet<string>;

  constructor(
    private readonly issuer: ResolvedIssuer,
    private readonly ctx: RemoteContext,
    private readonly tracer: Tracer,
  ) {
    const source = issuer.source;
    this.kind = source.kind === 'discovery' ? 'discovery' : 'jwks';
    this.discovery =
      source.kind === 'discovery' ? new Discovery(issuer.issuer, source.discoveryUri, ctx) : undefined;
    this.allowed = new Set(issuer.algorithms);
  }

  allows(alg: string): boolean {
    if (!this.allowed.has(alg)) return false;
    const discovered = this.discovery?.current?.accessTokenAlgorithms;
    return discovered === undefined || discovered.includes(alg);
  }

  usable(keyId: string, nowMs: number): boolean {
    if (this.set === undefined) return false;
    // Cached tokens are answered without asking for keys, so they must also keep the key set fresh:
    // otherwise a key removed from the JWKS would keep verifying them until the stale window ends.
    const { cacheTtl, refreshAhead } = this.ctx.config.jwks;
    if (nowMs - this.fetchedAt >= (cacheTtl - refreshAhead) * 1000) {
      this.background(nowMs - this.fetchedAt < cacheTtl * 1000 ? 'refresh_ahead' : 'stale', nowMs);
    }
    return this.withinStaleWindow(nowMs) && this.set.ids.has(keyId);
  }

  freshKeys(alg: string, kid: string | undefined): readonly VerificationKey[] | undefined {
    const { cacheTtl, refreshAhead } = this.ctx.config.jwks;
    if (!this.set || Date.now() - this.fetchedAt >= (cacheTtl - refreshAhead) * 1000) return undefined;
    const found = candidateKeys(this.set, alg, kid);
    return found.length > 0 ? found : undefined;
  }

  async keysFor(alg: string, kid: string | undefined): Promise<readonly VerificationKey[]> {
    const set = await this.usableSet();
    const found = candidateKeys(set, alg, kid);
    if (found.length > 0) return found;
    return this.unknownKey(alg, kid);
  }

  async warmUp(): Promise<void> {
    await this.refresh('warm_up');
  }

  health(): IssuerHealth {
    const now = Date.now();
    const failure = this.lastFailure
      ? { lastError: { at: new Date(this.lastFailure.at).toISOString(), reason: this.lastFailure.reason } }
      : {};
    const base = { issuer: this.issuer.issuer, source: this.kind, ...failure };
    if (!this.set) return { ...base, status: this.lastFailure ? 'down' : 'cold', keys: 0 };
    const fresh = now - this.fetchedAt < this.ctx.config.jwks.cacheTtl * 1000;
    return {
      ...base,
      status: fresh ? 'ok' : this.withinStaleWindow(now) ? 'stale' : 'down',
      keys: this.set.keys.length,
      fetchedAt: new Date(this.fetchedAt).toISOString(),
    };
  }

  private withinStaleWindow(now: number): boolean {
    const { cacheTtl, staleIfError } = this.ctx.config.jwks;
    return now - this.fetchedAt < (cacheTtl + staleIfError) * 1000;
  }

  private cooled(now: number): boolean {
    return now - this.lastAttemptEnd >= this.ctx.config.jwks.cooldown * 1000;
  }

  private background(trigger: Trigger, now: number): void {
    if (!this.inflight && this.cooled(now)) this.refresh(trigger).catch(() => {});
  }

  private unavailable(cause?: unknown): Error {
    const retryAfter = this.ctx.config.jwks.cooldown;
    if (isOidcError(cause) && cause.code === 'discovery_failed') {
      return authError('discovery_failed', cause.message, { retryAfter, cause: cause.cause });
    }
    return authError('jwks_unavailable', 'The signing keys of the issuer are unavailable.', {
      retryAfter,
      cause,
    });
  }

  private async usableSet(): Promise<KeySet> {
    const now = Date.now();
    const { cacheTtl, refreshAhead } = this.ctx.config.jwks;
    if (this.set) {
      const age = now - this.fetchedAt;
      if (age < (cacheTtl - refreshAhead) * 1000) return this.set;
      if (age < cacheTtl * 1000) {
        this.background('refresh_ahead', now);
        return this.set;
      }
      if (this.withinStaleWindow(now)) {
        this.background('stale', now);
        return this.set;
      }
    }
    if (this.inflight) {
      await this.inflight.catch(() => {});
    } else if (this.cooled(now) || !this.lastFailure) {
      await this.refresh('cold').catch(() => {});
    }
    if (this.set && this.withinStaleWindow(Date.now())) return this.set;
    throw this.unavailable(this.lastFailure?.error);
  }

  private async unknownKey(alg: string, kid: string | undefined): Promise<readonly VerificationKey[]> {
    const name = kid ?? '';
    const until = this.negative.get(name);
    if (until !== undefined) {
      if (until > Date.now()) throw keyNotFound(this.ctx.config.realm);
      this.negative.delete(name);
    }
    if (this.inflight) {
      await this.inflight.catch(() => {});
    } else if (this.cooled(Date.now())) {
      await this.refresh('unknown_kid').catch(() => {});
    }
    const found = this.set ? candidateKeys(this.set, alg, kid) : [];
    if (found.length > 0) return found;
    // After a failed refresh we cannot tell a new key from a forged kid: that is an outage, not a bad token.
    if (this.lastFailure) throw this.unavailable(this.lastFailure.error);
    if (this.negative.size >= MAX_NEGATIVE_KIDS) {
      const oldest = this.negative.keys().next();
      if (!oldest.done) this.negative.delete(oldest.value);
    }
    this.negative.set(name, this.lastAttemptEnd + this.ctx.config.jwks.negativeCacheTtl * 1000);
    throw keyNotFound(this.ctx.config.realm);
  }

  private refresh(trigger: Trigger): Promise<void> {
    if (this.inflight) return this.inflight;
    const { config, signal } = this.ctx;
    this.inflight = this.tracer.startActiveSpan(
      'amas.oidc.jwks_refresh',
      { attributes: { 'amas.oidc.issuer': this.issuer.issuer, 'amas.oidc.trigger': trigger } },
      async (span) => {
        try {
          const uri =
            this.issuer.source.kind === 'jwks'
              ? this.issuer.source.jwksUri
              : (await (this.discovery as Discovery).get(trigger === 'warm_up')).jwksUri;
          const doc = await fetchJson(uri, {
            fetch: config.fetch,
            signal,
            timeoutMs: config.jwks.timeout * 1000,
            maxBytes: config.jwks.maxBytes,
          });
          const set = buildKeySet(doc, config.jwks.maxKeys);
          this.set = set;
          this.fetchedAt = Date.now();
          this.lastFailure = undefined;
          this.negative.clear();
          span.setAttributes({ 'amas.oidc.outcome': 'ok', 'amas.oidc.keys': set.keys.length });
        } catch (error) {
          this.lastFailure = { at: Date.now(), reason: reasonOf(error), error };
          span.setAttribute('amas.oidc.outcome', isOidcError(error) ? error.code : 'jwks_unavailable');
          span.setStatus({ code: SpanStatusCode.ERROR, message: this.lastFailure.reason });
          throw error;
        } finally {
          this.lastAttemptEnd = Date.now();
          this.inflight = undefined;
          span.end();
        }
      },
    );
    return this.inflight;
  }
}

/** Keys given in the options: nothing is fetched, nothing expires. */
export class StaticKeys implements KeySource {
  readonly kind = 'static' as const;
  private readonly allowed: ReadonlySet<string>;

  constructor(
    private readonly issuer: ResolvedIssuer,
    private readonly set: KeySet,
    private readonly realm?: string,
  ) {
    this.allowed = new Set(issuer.algorithms);
  }

  allows(alg: string): boolean {
    return this.allowed.has(alg);
  }

  usable(keyId: string): boolean {
    return this.set.ids.has(keyId);
  }

  freshKeys(alg: string, kid: string | undefined): readonly VerificationKey[] | undefined {
    const found = candidateKeys(this.set, alg, kid);
    return found.length > 0 ? found : undefined;
  }

  async keysFor(alg: string, kid: string | undefined): Promise<readonly VerificationKey[]> {
    const found = candidateKeys(this.set, alg, kid);
    if (found.length === 0) throw keyNotFound(this.realm);
    return found;
  }

  async warmUp(): Promise<void> {}

  health(): IssuerHealth {
    return { issuer: this.issuer.issuer, source: 'static', status: 'ok', keys: this.set.keys.length };
  }
}

const HMAC_HASH: Record<string, string> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

/** An HMAC secret: only the issuer's `HS*` algorithms, never a public key. */
export class SecretKey implements KeySource {
  readonly kind = 'secret' as const;
  private readonly allowed: ReadonlySet<string>;
  private readonly key: VerificationKey;

  constructor(
    private readonly issuer: ResolvedIssuer,
    secret: Uint8Array,
    private readonly realm?: string,
  ) {
    this.allowed = new Set(issuer.algorithms);
    const imports = new Map<string, Promise<SignatureCheck>>();
    const ready = new Map<string, SignatureCheck>();
    for (const alg of issuer.algorithms) {
      const hash = HMAC_HASH[alg];
      if (!hash) continue;
      const imported = crypto.subtle
        .importKey('raw', secret, { name: 'HMAC', hash }, false, ['verify'])
        .then((k) => signatureCheck(k, alg));
      imports.set(alg, imported);
      imported.then((k) => ready.set(alg, k)).catch(() => {});
    }
    this.key = { id: 'secret', kid: undefined, jwk: Object.freeze({ kty: 'oct' }), imports, ready };
  }

  allows(alg: string): boolean {
    return this.allowed.has(alg);
  }

  usable(): boolean {
    return true;
  }

  freshKeys(alg: string): readonly VerificationKey[] | undefined {
    return this.key.imports.has(alg) ? [this.key] : undefined;
  }

  async keysFor(alg: string): Promise<readonly VerificationKey[]> {
    if (!this.key.imports.has(alg)) throw keyNotFound(this.realm);
    return [this.key];
  }

  async warmUp(): Promise<void> {}

  health(): IssuerHealth {
    return { issuer: this.issuer.issuer, source: 'secret', status: 'ok', keys: 1 };
  }
}

/** Creates the key source an issuer's options describe. */
export function createKeySource(issuer: ResolvedIssuer, ctx: RemoteContext, tracer: Tracer): KeySource {
  switch (issuer.source.kind) {
    case 'static':
      return new StaticKeys(issuer, issuer.source.keys, ctx.config.realm);
    case 'secret':
      return new SecretKey(issuer, issuer.source.secret, ctx.config.realm);
    default:
      return new RemoteJwks(issuer, ctx, tracer);
  }
}
