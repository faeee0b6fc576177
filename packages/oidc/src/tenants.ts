import { timingSafeEqual } from 'node:crypto';
import { authError, type ChallengeContext } from './challenge.js';
import type { KeySource } from './jwks.js';
import { type ResolvedConfig, type ResolvedIssuer, resolveResolverAnswer } from './options.js';
import type { IssuerResolver } from './types.js';
import { boundedSignal, untilAborted } from './until-aborted.js';

/** An allowed issuer with its key source, and how long it stays allowed. */
export interface IssuerEntry {
  readonly config: ResolvedIssuer;
  readonly source: KeySource;
  /** Until when (ms since the epoch) the issuer may verify tokens: `Infinity` for configured issuers. */
  expiresAt: number;
  /** From when a verified-token cache hit asks the resolver again, in the background. */
  refreshAt: number;
  /**
   * Set when the entry left the directory (the resolver refused the issuer or answered differently,
   * `maxIssuers` evicted it, the verifier closed): tokens cached under it are verified again.
   */
  dropped: boolean;
  /** Set when the resolver refused the issuer: a verification still running under the entry fails. */
  withdrawn: boolean;
}

/** An entry for an issuer of the options: allowed for as long as the verifier lives. */
export function configuredEntry(config: ResolvedIssuer, source: KeySource): IssuerEntry {
  return {
    config,
    source,
    expiresAt: Number.POSITIVE_INFINITY,
    refreshAt: Number.POSITIVE_INFINITY,
    dropped: false,
    withdrawn: false,
  };
}

// A resolver answer is renewed during the last fifth of its lifetime, so that active issuers never
// make a request wait on the tenant store.
const RENEW_AT = 0.8;

// After this many calls for issuers not held have failed in a row, no such call is made for
// `resolverCache.failureCooldown`: a tenant store that is down is not asked once per invented issuer.
export const STRANGER_FAILURES_TO_PAUSE = 5;

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Whether two answers for the same issuer describe the same trust: then its keys and cached tokens are kept. */
function sameAnswer(a: ResolvedIssuer, b: ResolvedIssuer): boolean {
  if (a.issuer !== b.issuer || !sameList(a.audience, b.audience) || !sameList(a.algorithms, b.algorithms)) {
    return false;
  }
  const x = a.source;
  const y = b.source;
  switch (x.kind) {
    case 'discovery':
      return y.kind === 'discovery' && x.discoveryUri === y.discoveryUri;
    case 'jwks':
      return y.kind === 'jwks' && x.jwksUri === y.jwksUri;
    case 'static':
      return (
        y.kind === 'static' &&
        x.keys.ids.size === y.keys.ids.size &&
        [...x.keys.ids].every((id) => y.keys.ids.has(id))
      );
    case 'secret':
      return (
        y.kind === 'secret' &&
        x.secret.byteLength === y.secret.byteLength &&
        timingSafeEqual(x.secret, y.secret)
      );
  }
}

/**
 * The answers of an issuer resolver, with a lifetime.
 *
 * - An acceptance is trusted for `resolverCache.ttl`, renewed in the background from 80 % of it on
 *   (one attempt per `resolverCache.failureCooldown` while the resolver fails); once expired, requests
 *   wait for a new answer, and a failure then is a 503, never a stale yes.
 * - The same answer again keeps the issuer's key source (no JWKS refetch) and its cached tokens; a
 *   refusal, a different answer or an eviction drops the entry, and with it its cached tokens; a
 *   refusal also fails the verifications still running under it.
 * - A refusal is remembered for `resolverCache.refusalTtl` (at most `maxRefusals` of them), so that a
 *   repeated unknown `iss` does not call the tenant store per request.
 * - A failure (a throw, a timeout, an invalid answer) is remembered for `resolverCache.failureCooldown`
 *   (at most `maxRefusals` of them): the issuer's requests get the same 503 meanwhile, without a call,
 *   so that a tenant store that is down is not asked once per request. It is never a refusal. After
 *   {@link STRANGER_FAILURES_TO_PAUSE} failed calls in a row for issuers not held, no call for any
 *   issuer not held is made for `failureCooldown` either (503 at once), so that a flood of invented
 *   issuers does not ask a tenant store that is down once per issuer; issuers held are not affected.
 * - At most one call per `iss` is in flight, bounded by `jwks.timeout` and by `close()`; at most
 *   `resolverCache.maxPending` calls for issuers not held are in flight together, and a request that
 *   would start one more is a 503 at once. Issuers held (renewals, expired leases) are not counted:
 *   at most `maxIssuers` of them, one call each, so a flood of invented issuers never delays them.
 */
export class ResolvedIssuers {
  private readonly accepted = new Map<string, IssuerEntry>();
  private readonly refused = new Map<string, number>();
  private readonly failed = new Map<string, number>();
  private readonly asking = new Map<string, Promise<IssuerEntry | undefined>>();
  /** Calls in flight for issuers that were not held when the call started. */
  private strangers = 0;
  /** Calls for issuers not held that failed in a row, and until when no new such call is made. */
  private strangerFailures = 0;
  private strangersPausedUntil = 0;

  constructor(
    private readonly resolver: IssuerResolver,
    private readonly config: ResolvedConfig,
    private readonly signal: AbortSignal,
    private readonly keySource: (issuer: ResolvedIssuer) => KeySource,
    private readonly ctx: ChallengeContext,
  ) {}

  /** The entry of an allowed issuer. Rejects with `issuer_mismatch` (401) or `discovery_failed` (503). */
  async get(iss: string): Promise<IssuerEntry> {
    const now = Date.now();
    const known = this.accepted.get(iss);
    if (known && now < known.expiresAt) {
      this.accepted.delete(iss);
      this.accepted.set(iss, known);
      if (now >= known.refreshAt) this.renew(known, now);
      return known;
    }
    const refusedUntil = this.refused.get(iss);
    if (refusedUntil !== undefined) {
      if (now < refusedUntil) throw this.mismatch();
      this.refused.delete(iss);
    }
    const failedUntil = this.failed.get(iss);
    if (failedUntil !== undefined) {
      if (now < failedUntil) throw this.unavailable((failedUntil - now) / 1000);
      this.failed.delete(iss);
    }
    const entry = await this.ask(iss);
    if (!entry) throw this.mismatch();
    return entry;
  }

  /** Asks the resolver again in the background (verified-token cache hits call this when `refreshAt` is due). */
  renew(entry: IssuerEntry, now: number): void {
    const iss = entry.config.issuer;
    if (entry.dropped || this.asking.has(iss)) return;
    entry.refreshAt = now + this.config.resolverCache.failureCooldown * 1000;
    this.ask(iss).catch(() => {});
  }

  entries(): IssuerEntry[] {
    return [...this.accepted.values()];
  }

  clear(): void {
    for (const entry of this.accepted.values()) entry.dropped = true;
    this.accepted.clear();
    this.refused.clear();
    this.failed.clear();
    this.strangerFailures = 0;
    this.strangersPausedUntil = 0;
  }

  private mismatch() {
    return authError('issuer_mismatch', 'The token issuer is not allowed.', this.ctx);
  }

  /** A 503 `discovery_failed` telling the client when to come back. */
  private unavailable(retryAfter: number, cause?: unknown) {
    return authError('discovery_failed', 'The issuer could not be resolved.', {
      ...this.ctx,
      retryAfter,
      cause,
    });
  }

  private ask(iss: string): Promise<IssuerEntry | undefined> {
    const pending = this.asking.get(iss);
    if (pending) return pending;
    // Nothing is known about an issuer never seen before, so invented ones are bounded in number
    // instead: fail closed at once rather than queue, or let a flood load the tenant store.
    const stranger = !this.accepted.has(iss);
    if (stranger) {
      const now = Date.now();
      if (now < this.strangersPausedUntil) {
        return Promise.reject(
          this.unavailable(
            (this.strangersPausedUntil - now) / 1000,
            new Error('the issuer resolver failed for several new issuers in a row'),
          ),
        );
      }
      if (this.strangers >= this.config.resolverCache.maxPending) {
        return Promise.reject(
          this.unavailable(
            this.config.resolverCache.failureCooldown,
            new Error('resolverCache.maxPending resolver calls are already in flight'),
          ),
        );
      }
      this.strangers++;
    }
    const call = this.askResolver(iss).then(
      (entry) => {
        this.asking.delete(iss);
        if (stranger) {
          this.strangers--;
          this.strangerFailures = 0;
        }
        return entry;
      },
      (err: unknown) => {
        this.asking.delete(iss);
        if (stranger) {
          this.strangers--;
          this.strangerFailed();
        }
        throw err;
      },
    );
    this.asking.set(iss, call);
    return call;
  }

  private async askResolver(iss: string): Promise<IssuerEntry | undefined> {
    // The answer describes the tenant store at some moment after this one: its lifetime starts here.
    const askedAt = Date.now();
    let answer: ResolvedIssuer | undefined;
    try {
      answer = resolveResolverAnswer(iss, await this.call(iss), this.config);
      if (this.signal.aborted) throw new Error('the verifier is closed');
    } catch (cause) {
      this.remember(iss);
      throw this.unavailable(this.config.resolverCache.failureCooldown, cause);
    }
    this.failed.delete(iss);
    const previous = this.accepted.get(iss);
    if (!answer) {
      if (previous) {
        previous.withdrawn = true;
        this.drop(iss, previous);
      }
      this.refuse(iss, askedAt);
      return undefined;
    }
    this.refused.delete(iss);
    if (previous && sameAnswer(previous.config, answer)) {
      this.lease(previous, askedAt);
      return previous;
    }
    if (previous) this.drop(iss, previous);
    while (this.accepted.size >= this.config.maxIssuers) {
      const oldest = this.accepted.entries().next();
      if (oldest.done) break;
      this.drop(oldest.value[0], oldest.value[1]);
    }
    const entry: IssuerEntry = {
      config: answer,
      source: this.keySource(answer),
      expiresAt: 0,
      refreshAt: 0,
      dropped: false,
      withdrawn: false,
    };
    this.lease(entry, askedAt);
    this.accepted.set(iss, entry);
    return entry;
  }

  /**
   * The resolver's raw answer. A hung tenant store is an outage (503), bounded like a fetch by
   * `jwks.timeout` and by `close()`, not a request that never ends.
   */
  private async call(iss: string): Promise<unknown> {
    const bound = boundedSignal(
      this.signal,
      this.config.jwks.timeout * 1000,
      'the issuer resolver did not answer in time',
    );
    try {
      return await untilAborted(this.resolver(iss), bound.signal);
    } finally {
      bound.release();
    }
  }

  private lease(entry: IssuerEntry, from: number): void {
    const ttlMs = this.config.resolverCache.ttl * 1000;
    entry.expiresAt = from + ttlMs;
    entry.refreshAt = from + ttlMs * RENEW_AT;
  }

  private drop(iss: string, entry: IssuerEntry): void {
    entry.dropped = true;
    this.accepted.delete(iss);
  }

  private refuse(iss: string, from: number): void {
    const { refusalTtl, maxRefusals } = this.config.resolverCache;
    if (refusalTtl <= 0) return;
    this.refused.delete(iss);
    while (this.refused.size >= maxRefusals) {
      const oldest = this.refused.keys().next();
      if (oldest.done) break;
      this.refused.delete(oldest.value);
    }
    this.refused.set(iss, from + refusalTtl * 1000);
  }

  /** Remembers a failed call, counted from its end: an outage, never a refusal. */
  /** Counts a failed call for an issuer not held; pauses such calls after several in a row. */
  private strangerFailed(): void {
    const { failureCooldown } = this.config.resolverCache;
    if (failureCooldown <= 0 || this.signal.aborted) return;
    if (++this.strangerFailures < STRANGER_FAILURES_TO_PAUSE) return;
    this.strangerFailures = 0;
    this.strangersPausedUntil = Date.now() + failureCooldown * 1000;
  }

  private remember(iss: string): void {
    const { failureCooldown, maxRefusals } = this.config.resolverCache;
    if (failureCooldown <= 0 || this.signal.aborted) return;
    this.failed.delete(iss);
    while (this.failed.size >= maxRefusals) {
      const oldest = this.failed.keys().next();
      if (oldest.done) break;
      this.failed.delete(oldest.value);
    }
    this.failed.set(iss, Date.now() + failureCooldown * 1000);
  }
}
