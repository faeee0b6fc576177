import { authError } from './challenge.js';
import { FetchFailure, fetchJson, urlProblem } from './fetch-json.js';
import type { ResolvedConfig } from './options.js';

/** What the verifier takes from a discovery document. */
export interface DiscoveredMetadata {
  readonly jwksUri: string;
  /** `access_token_signing_alg_values_supported`, when the provider publishes it. */
  readonly accessTokenAlgorithms: readonly string[] | undefined;
}

/** Shared plumbing of the remote sources: how to fetch and when the verifier closed. */
export interface RemoteContext {
  readonly config: ResolvedConfig;
  readonly signal: AbortSignal;
}

function validate(
  doc: unknown,
  issuer: string,
  discoveryUri: string,
  allowInsecureHttp: boolean,
): DiscoveredMetadata {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new FetchFailure('the discovery document is not a JSON object');
  }
  const d = doc as Record<string, unknown>;
  // OIDC Discovery 1.0 section 4.3: the document's issuer must be exactly the one we asked about,
  // otherwise a compromised or misconfigured document could vouch for another issuer's keys.
  if (d.issuer !== issuer) throw new FetchFailure('the discovery document names a different issuer');
  if (typeof d.jwks_uri !== 'string') throw new FetchFailure('the discovery document has no jwks_uri');
  const problem = urlProblem(d.jwks_uri, allowInsecureHttp);
  if (problem) throw new FetchFailure(`the discovered jwks_uri ${problem}`);
  // Loopback http is there for local providers; a document fetched over https must not send the
  // verifier to plain http on this host (a tenant's provider probing the server's own ports).
  const secure = (url: string) => new URL(url).protocol === 'https:';
  if (!allowInsecureHttp && secure(discoveryUri) && !secure(d.jwks_uri)) {
    throw new FetchFailure('the discovered jwks_uri downgrades https to http');
  }
  const algs = d.access_token_signing_alg_values_supported;
  const accessTokenAlgorithms =
    Array.isArray(algs) && algs.every((a) => typeof a === 'string') ? Object.freeze([...algs]) : undefined;
  return Object.freeze({ jwksUri: d.jwks_uri, accessTokenAlgorithms });
}

/**
 * One issuer's discovery document: fetched once, shared by concurrent callers, refreshed in the
 * background after `jwks.discoveryTtl`, and kept when a refresh fails.
 */
export class Discovery {
  private metadata: DiscoveredMetadata | undefined;
  private fetchedAt = 0;
  private lastAttemptEnd = Number.NEGATIVE_INFINITY;
  private failed = false;
  private inflight: Promise<DiscoveredMetadata> | undefined;

  constructor(
    private readonly issuer: string,
    private readonly uri: string,
    private readonly ctx: RemoteContext,
  ) {}

  /** The last known metadata, without fetching. */
  get current(): DiscoveredMetadata | undefined {
    return this.metadata;
  }

  /** The metadata, fetching it when it is not known yet. Rejects with `discovery_failed`. */
  async get(force = false): Promise<DiscoveredMetadata> {
    const now = Date.now();
    const { cooldown, discoveryTtl } = this.ctx.config.jwks;
    const cooled = now - this.lastAttemptEnd >= cooldown * 1000;
    if (this.metadata && !force) {
      if (now - this.fetchedAt >= discoveryTtl * 1000 && !this.inflight && cooled) {
        this.fetch().catch(() => {});
      }
      return this.metadata;
    }
    if (this.inflight) return this.inflight;
    if (!force && this.failed && !cooled) {
      throw authError('discovery_failed', 'The identity provider could not be reached.', {
        retryAfter: cooldown,
      });
    }
    return this.fetch();
  }

  private fetch(): Promise<DiscoveredMetadata> {
    const { jwks, fetch, allowInsecureHttp } = this.ctx.config;
    this.inflight = (async () => {
      try {
        const doc = await fetchJson(this.uri, {
          fetch,
          signal: this.ctx.signal,
          timeoutMs: jwks.timeout * 1000,
          maxBytes: jwks.maxBytes,
        });
        this.metadata = validate(doc, this.issuer, this.uri, allowInsecureHttp);
        this.fetchedAt = Date.now();
        this.failed = false;
        return this.metadata;
      } catch (cause) {
        this.failed = true;
        throw authError('discovery_failed', 'The identity provider could not be reached.', {
          retryAfter: jwks.cooldown,
          cause,
        });
      } finally {
        this.lastAttemptEnd = Date.now();
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }
}
