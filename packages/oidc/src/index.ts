export type { OidcErrorCode, OidcErrorOptions } from './errors.js';
export { isOidcError, OidcError, OidcErrorStatus } from './errors.js';
export { checkClaims, checkScopes, hasClaims, hasScopes } from './guards.js';
export { ASYMMETRIC_ALGORITHMS } from './options.js';
export type {
  ClaimRequirement,
  ClaimRequirements,
  ClaimValidator,
  ConfirmationClaim,
  IssuerHealth,
  IssuerOptions,
  IssuerResolver,
  JwksOptions,
  JwtClaims,
  Principal,
  PublicJwk,
  RequestLike,
  ResolverCacheOptions,
  ScopeCheckOptions,
  StandardSchemaV1,
  TokenCacheOptions,
  TokenHeader,
  TokenSources,
  Verifier,
  VerifierHealth,
  VerifierOptions,
  VerifyRequestOptions,
} from './types.js';
export { createVerifier } from './verifier.js';
