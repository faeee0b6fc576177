import * as z from 'zod';
import { OidcError } from './errors.js';
import { urlProblem } from './fetch-json.js';
import { buildKeySet, jwkProblem, type KeySet } from './keys.js';
import type {
  ClaimValidator,
  IssuerOptions,
  IssuerResolver,
  RequestLike,
  StandardSchemaV1,
  VerifierOptions,
} from './types.js';

/**
 * Every asymmetric JWS algorithm this package verifies: the default of `algorithms`.
 *
 * @example
 * ```ts
 * createVerifier({ issuer, audience, algorithms: ASYMMETRIC_ALGORITHMS.filter((a) => a.startsWith('ES')) });
 * ```
 */
export const ASYMMETRIC_ALGORITHMS = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const);
const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
const HMAC_MIN_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };
const KNOWN_ALGORITHMS: readonly string[] = [...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS];

/** Where one issuer's keys come from, resolved. */
export type ResolvedSource =
  | { readonly kind: 'discovery'; readonly discoveryUri: string }
  | { readonly kind: 'jwks'; readonly jwksUri: string }
  | { readonly kind: 'static'; readonly keys: KeySet }
  | { readonly kind: 'secret'; readonly secret: Uint8Array };

/** One allowed issuer, resolved and frozen. */
export interface ResolvedIssuer {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly source: ResolvedSource;
}

/** The verifier's configuration after validation; frozen. */
export interface ResolvedConfig {
  readonly issuers: readonly ResolvedIssuer[];
  readonly resolver: IssuerResolver | undefined;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[] | undefined;
  readonly clockTolerance: number;
  readonly maxTokenAge: number | undefined;
  readonly requiredClaims: readonly string[];
  readonly profile: 'jwt' | 'rfc9068';
  readonly claimValidators: Readonly<Record<string, ClaimValidator>>;
  readonly claimsSchema: StandardSchemaV1 | undefined;
  readonly jwks: {
    readonly cacheTtl: number;
    readonly refreshAhead: number;
    readonly cooldown: number;
    readonly negativeCacheTtl: number;
    readonly staleIfError: number;
    readonly timeout: number;
    readonly maxBytes: number;
    readonly maxKeys: number;
    readonly discoveryTtl: number;
  };
  readonly cache: { readonly maxEntries: number; readonly maxAge: number } | false;
  readonly tokenSources: {
    readonly header: boolean;
    readonly cookie: string | undefined;
    readonly query: string | undefined;
    readonly custom: ((request: RequestLike) => string | undefined) | undefined;
  };
  readonly maxTokenLength: number;
  readonly realm: string | undefined;
  readonly allowInsecureHttp: boolean;
  readonly maxIssuers: number;
  readonly resolverCache: {
    readonly ttl: number;
    readonly refusalTtl: number;
    readonly maxRefusals: number;
    readonly failureCooldown: number;
    readonly maxPending: number;
  };
  readonly senderConstrained: 'reject' | 'allow';
  readonly fetch: typeof fetch;
}

const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { message: `must be a function: ${what}` });

const seconds = (max: number, what: string) =>
  z
    .number({ error: `must be a number of seconds (${what})` })
    .min(0, 'must not be negative')
    .max(max, `is in seconds and must be at most ${max}`);

const nonEmpty = z.string({ error: 'must be a string' }).min(1, 'must not be empty');
const audienceSchema = z.union([nonEmpty, z.array(nonEmpty).min(1, 'must list at least one audience')], {
  error: (issue) =>
    issue.input === undefined
      ? "is required: set it to this API's identifier, which tokens must carry in `aud`"
      : 'must be a string or a non-empty list of strings',
});
const algorithmSchema = z.string().refine((a) => KNOWN_ALGORITHMS.includes(a), {
  error: (issue) =>
    typeof issue.input === 'string' && issue.input.toLowerCase() === 'none'
      ? '"none" is never allowed'
      : `must be one of ${KNOWN_ALGORITHMS.join(', ')}`,
});
const algorithmsSchema = z.array(algorithmSchema).min(1, 'must list at least one algorithm');
const jwkListSchema = z.union([z.array(z.unknown()), z.object({ keys: z.array(z.unknown()) })], {
  error: 'must be a JWKS ({ keys: [...] }) or a list of JWKs',
});
const secretSchema = z.union([z.string().min(1), z.instanceof(Uint8Array)], {
  error: 'must be a string or a Uint8Array',
});

const issuerOptionsSchema = z.strictObject({
  issuer: nonEmpty,
  jwksUri: z.string().optional(),
  discoveryUri: z.string().optional(),
  keys: jwkListSchema.optional(),
  secret: secretSchema.optional(),
  algorithms: algorithmsSchema.optional(),
  audience: audienceSchema.optional(),
});

const schema = z.strictObject({
  issuer: z.union(
    [nonEmpty, issuerOptionsSchema, z.array(z.union([nonEmpty, issuerOptionsSchema])).min(1), fn('resolver')],
    {
      error: (issue) =>
        issue.input === undefined
          ? 'is required: the issuer URL, a list of issuers, or a resolver function'
          : 'must be a string, issuer options, a non-empty list of them, or a resolver function',
    },
  ),
  audience: audienceSchema,
  jwksUri: z.string().optional(),
  keys: jwkListSchema.optional(),
  secret: secretSchema.optional(),
  algorithms: algorithmsSchema.optional(),
  clockTolerance: seconds(300, 'clockTolerance').optional(),
  maxTokenAge: seconds(31_536_000, 'maxTokenAge').optional(),
  requiredClaims: z.array(nonEmpty).optional(),
  requireExp: z.boolean().optional(),
  profile: z.enum(['jwt', 'rfc9068']).optional(),
  claimValidators: z.record(z.string(), fn<ClaimValidator>('(value, claims) => boolean')).optional(),
  claimsSchema: z
    .custom<StandardSchemaV1>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as Partial<StandardSchemaV1>)['~standard']?.validate === 'function',
      { message: 'must be a Standard Schema (a zod, valibot or arktype schema)' },
    )
    .optional(),
  jwks: z
    .strictObject({
      cacheTtl: seconds(86_400, 'jwks.cacheTtl').min(1, 'must be at least 1 second').optional(),
      refreshAhead: seconds(86_400, 'jwks.refreshAhead').optional(),
      cooldown: seconds(300, 'jwks.cooldown').optional(),
      negativeCacheTtl: seconds(300, 'jwks.negativeCacheTtl').optional(),
      staleIfError: seconds(7 * 86_400, 'jwks.staleIfError').optional(),
      timeout: seconds(60, 'jwks.timeout').min(0.05, 'must be at least 0.05 seconds').optional(),
      maxBytes: z
        .int()
        .min(1024)
        .max(16 * 1024 * 1024)
        .optional(),
      maxKeys: z.int().min(1).max(10_000).optional(),
      discoveryTtl: seconds(7 * 86_400, 'jwks.discoveryTtl').optional(),
    })
    .optional(),
  cache: z
    .union([
      z.literal(false),
      z.strictObject({
        maxEntries: z.int().min(1).max(10_000_000).optional(),
        maxAge: seconds(86_400, 'cache.maxAge').min(1, 'must be at least 1 second').optional(),
      }),
    ])
    .optional(),
  tokenSources: z
    .strictObject({
      header: z.boolean().optional(),
      cookie: nonEmpty.optional(),
      query: z.union([z.boolean(), nonEmpty]).optional(),
      custom: fn<(request: RequestLike) => string | undefined>('(request) => string | undefined').optional(),
    })
    .optional(),
  maxTokenLength: z
    .int()
    .min(64)
    .max(16_000, 'must be at most 16000 (Node refuses headers over 16 KiB)')
    .optional(),
  realm: z.string().optional(),
  allowInsecureHttp: z.boolean().optional(),
  maxIssuers: z.int().min(1).max(100_000).optional(),
  resolverCache: z
    .strictObject({
      ttl: seconds(86_400, 'resolverCache.ttl').min(1, 'must be at least 1 second').optional(),
      refusalTtl: seconds(3600, 'resolverCache.refusalTtl').optional(),
      maxRefusals: z.int().min(1).max(1_000_000).optional(),
      failureCooldown: seconds(300, 'resolverCache.failureCooldown').optional(),
      maxPending: z
        .int({ error: 'must be a whole number of resolver calls' })
        .min(1, 'must be at least 1')
        .max(10_000, 'must be at most 10000')
        .optional(),
    })
    .optional(),
  senderConstrained: z
    .enum(['reject', 'allow'], {
      error:
        "must be 'reject' (refuse tokens with a cnf claim, the default) or 'allow' (you verify the DPoP or mTLS binding yourself)",
    })
    .optional(),
  fetch: fn<typeof fetch>('the fetch API').optional(),
});

type Problems = string[];

function toBytes(secret: string | Uint8Array): Uint8Array {
  return typeof secret === 'string' ? new TextEncoder().encode(secret) : new Uint8Array(secret);
}

function list<T>(value: T | readonly T[]): readonly T[] {
  return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

/**
 * Resolves one issuer's options (also used for the answers of a resolver). Pushes a message naming
 * the option to `problems` for every mistake.
 */
export function resolveIssuer(
  entry: IssuerOptions,
  defaults: {
    audience: readonly string[];
    algorithms: readonly string[] | undefined;
    allowInsecureHttp: boolean;
  },
  at: string,
  problems: Problems,
): ResolvedIssuer | undefined {
  const sources = (['jwksUri', 'keys', 'secret'] as const).filter((k) => entry[k] !== undefined);
  if (sources.length > 1) {
    problems.push(`${at}: give only one of jwksUri, keys and secret (got ${sources.join(', ')})`);
    return undefined;
  }
  if (entry.discoveryUri !== undefined && sources.length > 0) {
    problems.push(
      `${at}.discoveryUri: only applies when the keys are discovered (no jwksUri, keys or secret)`,
    );
  }
  const hmac = entry.secret !== undefined;
  const algorithms = entry.algorithms ?? defaults.algorithms ?? (hmac ? ['HS256'] : ASYMMETRIC_ALGORITHMS);
  const algPath = entry.algorithms ? `${at}.algorithms` : 'algorithms';
  const hmacAlgs = algorithms.filter((a) => a.startsWith('HS'));
  if (hmac && hmacAlgs.length !== algorithms.length) {
    problems.push(
      `${algPath}: an issuer with a secret allows only HS256/HS384/HS512; HMAC and public-key algorithms are never mixed`,
    );
  }
  if (!hmac && hmacAlgs.length > 0) {
    problems.push(
      `${algPath}: ${hmacAlgs.join(', ')} needs an explicit \`secret\` for ${JSON.stringify(entry.issuer)}; HMAC is never verified with public keys`,
    );
  }
  let source: ResolvedSource | undefined;
  if (entry.secret !== undefined) {
    const secret = toBytes(entry.secret);
    for (const a of hmacAlgs) {
      const min = HMAC_MIN_BYTES[a] ?? 32;
      if (secret.byteLength < min)
        problems.push(`${at}.secret: ${a} needs a secret of at least ${min} bytes`);
    }
    source = { kind: 'secret', secret };
  } else if (entry.keys !== undefined) {
    const jwks = Array.isArray(entry.keys) ? entry.keys : entry.keys.keys;
    jwks.forEach((jwk, i) => {
      const problem = jwkProblem(jwk);
      if (problem) problems.push(`${at}.keys[${i}]: ${problem}`);
    });
    if (jwks.length === 0) problems.push(`${at}.keys: must hold at least one public key`);
    else if (problems.length === 0)
      source = { kind: 'static', keys: buildKeySet({ keys: jwks }, jwks.length) };
  } else if (entry.jwksUri !== undefined) {
    const problem = urlProblem(entry.jwksUri, defaults.allowInsecureHttp);
    if (problem) problems.push(`${at}.jwksUri: ${problem}`);
    source = { kind: 'jwks', jwksUri: entry.jwksUri };
  } else {
    const discoveryUri =
      entry.discoveryUri ?? `${entry.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const problem = urlProblem(discoveryUri, defaults.allowInsecureHttp);
    if (problem) {
      problems.push(
        entry.discoveryUri
          ? `${at}.discoveryUri: ${problem}`
          : `${at}: keys are discovered from the issuer URL, which ${problem}; or give jwksUri, keys or secret`,
      );
    }
    source = { kind: 'discovery', discoveryUri };
  }
  if (!source) return undefined;
  return Object.freeze({
    issuer: entry.issuer,
    audience: Object.freeze([...list(entry.audience ?? defaults.audience)]),
    algorithms: Object.freeze([...algorithms]),
    source: Object.freeze(source),
  });
}

function fail(problems: Problems): never {
  throw new OidcError('config_invalid', `Invalid @amas/oidc options: ${problems.join('; ')}`);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/**
 * Validates the options of `createVerifier` once, with messages that name the option, and returns
 * the frozen configuration. Throws {@link OidcError} `config_invalid`.
 */
export function resolveOptions(options: VerifierOptions<unknown>): ResolvedConfig {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    fail(parsed.error.issues.map((i) => `${formatPath(i.path) || 'options'}: ${i.message}`));
  }
  const o = parsed.data;
  const problems: Problems = [];
  const audience = Object.freeze([...list(o.audience)]);
  const allowInsecureHttp = o.allowInsecureHttp ?? false;
  const defaults = { audience, algorithms: o.algorithms, allowInsecureHttp };

  let resolver: IssuerResolver | undefined;
  let entries: IssuerOptions[] = [];
  const shorthand = (['jwksUri', 'keys', 'secret'] as const).filter((k) => o[k] !== undefined);
  if (typeof o.issuer === 'function') {
    resolver = o.issuer as IssuerResolver;
    if (shorthand.length > 0)
      problems.push(`${shorthand[0]}: does not apply to a resolver; return it from the resolver`);
  } else if (typeof o.issuer === 'string') {
    entries = [
      { issuer: o.issuer, jwksUri: o.jwksUri, keys: o.keys as IssuerOptions['keys'], secret: o.secret },
    ];
  } else {
    if (shorthand.length > 0) {
      problems.push(
        `${shorthand[0]}: only applies to a single string issuer; put it in the issuer's options`,
      );
    }
    entries = list(o.issuer).map((e) => (typeof e === 'string' ? { issuer: e } : (e as IssuerOptions)));
  }
  const seen = new Set<string>();
  const issuers: ResolvedIssuer[] = [];
  entries.forEach((entry, i) => {
    const at = Array.isArray(o.issuer) ? `issuer[${i}]` : 'issuer';
    if (seen.has(entry.issuer)) problems.push(`${at}: ${JSON.stringify(entry.issuer)} is listed twice`);
    seen.add(entry.issuer);
    const resolved = resolveIssuer(entry, defaults, at, problems);
    if (resolved) issuers.push(resolved);
  });
  if (o.resolverCache !== undefined && !resolver) {
    problems.push('resolverCache: only applies when issuer is a resolver function');
  }
  const tolerance = o.clockTolerance ?? 5;
  const cacheTtl = o.jwks?.cacheTtl ?? 600;
  if ((o.jwks?.refreshAhead ?? 0) >= cacheTtl)
    problems.push('jwks.refreshAhead: must be shorter than jwks.cacheTtl');
  if (problems.length > 0) fail(problems);

  const requiredClaims = new Set(o.requiredClaims ?? []);
  if (o.requireExp !== false) requiredClaims.add('exp');
  if (o.profile === 'rfc9068')
    for (const c of ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti']) requiredClaims.add(c);
  const query = o.tokenSources?.query;

  return Object.freeze({
    issuers: Object.freeze(issuers),
    resolver,
    audience,
    algorithms: o.algorithms ? Object.freeze([...o.algorithms]) : undefined,
    clockTolerance: tolerance,
    maxTokenAge: o.maxTokenAge,
    requiredClaims: Object.freeze([...requiredClaims]),
    profile: o.profile ?? 'jwt',
    claimValidators: Object.freeze({ ...(o.claimValidators ?? {}) }),
    claimsSchema: o.claimsSchema,
    jwks: Object.freeze({
      cacheTtl,
      refreshAhead: o.jwks?.refreshAhead ?? Math.min(60, cacheTtl / 2),
      cooldown: o.jwks?.cooldown ?? 2,
      negativeCacheTtl: o.jwks?.negativeCacheTtl ?? 2,
      staleIfError: o.jwks?.staleIfError ?? 3600,
      timeout: o.jwks?.timeout ?? 5,
      maxBytes: o.jwks?.maxBytes ?? 512 * 1024,
      maxKeys: o.jwks?.maxKeys ?? 100,
      discoveryTtl: o.jwks?.discoveryTtl ?? 3600,
    }),
    cache:
      o.cache === false
        ? false
        : Object.freeze({ maxEntries: o.cache?.maxEntries ?? 10_000, maxAge: o.cache?.maxAge ?? 600 }),
    tokenSources: Object.freeze({
      header: o.tokenSources?.header ?? true,
      cookie: o.tokenSources?.cookie,
      query: query === true ? 'access_token' : query === false || query === undefined ? undefined : query,
      custom: o.tokenSources?.custom,
    }),
    maxTokenLength: o.maxTokenLength ?? 8192,
    realm: o.realm,
    allowInsecureHttp,
    maxIssuers: o.maxIssuers ?? 100,
    resolverCache: Object.freeze({
      ttl: o.resolverCache?.ttl ?? 300,
      refusalTtl: o.resolverCache?.refusalTtl ?? 30,
      maxRefusals: o.resolverCache?.maxRefusals ?? 1000,
      failureCooldown: o.resolverCache?.failureCooldown ?? 2,
      maxPending: o.resolverCache?.maxPending ?? 32,
    }),
    senderConstrained: o.senderConstrained ?? 'reject',
    fetch: o.fetch ?? ((input, init) => globalThis.fetch(input, init)),
  });
}

/**
 * Validates what a resolver returned for `iss`. Returns `undefined` when the issuer is rejected;
 * throws {@link OidcError} `config_invalid` when the answer itself is wrong.
 */
export function resolveResolverAnswer(
  iss: string,
  answer: unknown,
  config: ResolvedConfig,
): ResolvedIssuer | undefined {
  if (answer === undefined || answer === false || answer === null) return undefined;
  const entry = answer === true ? { issuer: iss } : answer;
  const parsed = issuerOptionsSchema.safeParse(entry);
  const problems: Problems = [];
  if (!parsed.success) {
    fail(parsed.error.issues.map((i) => `resolver answer ${formatPath(i.path) || ''}: ${i.message}`));
  }
  if (parsed.data.issuer !== iss)
    problems.push('resolver answer: its issuer differs from the iss it was asked about');
  const resolved = resolveIssuer(parsed.data as IssuerOptions, config, 'resolver answer', problems);
  if (problems.length > 0 || !resolved) fail(problems);
  return resolved;
}
