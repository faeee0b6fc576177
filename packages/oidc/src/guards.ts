import { authError } from './challenge.js';
import { OidcError } from './errors.js';
import type {
  ClaimRequirement,
  ClaimRequirements,
  JwtClaims,
  Principal,
  ScopeCheckOptions,
} from './types.js';

/**
 * Whether a principal holds the scopes: all of them (default) or, with `mode: 'any'`, one of them.
 *
 * @example
 * ```ts
 * if (hasScopes(principal, ['tools:run'])) runTool();
 * ```
 */
export function hasScopes(
  principal: Pick<Principal<unknown>, 'scopes'>,
  scopes: string | readonly string[],
  options: ScopeCheckOptions = {},
): boolean {
  const required = typeof scopes === 'string' ? [scopes] : scopes;
  const held = new Set(principal.scopes);
  return options.mode === 'any' ? required.some((s) => held.has(s)) : required.every((s) => held.has(s));
}

/**
 * Throws 403 `insufficient_scope` (with the required scopes in `WWW-Authenticate`) unless the
 * principal holds the scopes; 401 `token_missing` when there is no principal.
 *
 * @example
 * ```ts
 * checkScopes(principal, ['tools:run', 'tools:admin'], { mode: 'any' });
 * ```
 */
export function checkScopes(
  principal: Principal<unknown> | undefined,
  scopes: string | readonly string[],
  options: ScopeCheckOptions & { realm?: string } = {},
): void {
  if (!principal) throw missing(options.realm);
  if (hasScopes(principal, scopes, options)) return;
  throw authError('insufficient_scope', 'The token does not grant the scope this request needs.', {
    realm: options.realm,
    scope: typeof scopes === 'string' ? [scopes] : scopes,
  });
}

function includes(value: unknown, member: string | number): boolean {
  if (Array.isArray(value)) return value.includes(member);
  return typeof value === 'string' && typeof member === 'string' && value.split(' ').includes(member);
}

function satisfies(value: unknown, requirement: ClaimRequirement, claims: JwtClaims): boolean {
  if (typeof requirement === 'function') return requirement(value, claims) === true;
  // A claim the token lacks never meets a value, not even `undefined` (an unset environment variable).
  if (value === undefined) return false;
  if (typeof requirement !== 'object' || requirement === null) return value === requirement;
  if ('equals' in requirement) return value === requirement.equals;
  if ('includes' in requirement) return includes(value, requirement.includes);
  if ('oneOf' in requirement) return requirement.oneOf.includes(value);
  return false;
}

/**
 * Whether a principal meets claim requirements: per claim a value it must equal, `{ includes }`
 * (a list claim, or a space-delimited string), `{ oneOf }` or a predicate; or one predicate over the
 * whole principal. A predicate that throws counts as not met.
 *
 * @example
 * ```ts
 * hasClaims(principal, { tenant: 'acme', roles: { includes: 'admin' } });
 * ```
 */
export function hasClaims(principal: Principal<unknown>, requirements: ClaimRequirements): boolean {
  try {
    if (typeof requirements === 'function') return requirements(principal as Principal<JwtClaims>) === true;
    const claims = (principal.claims ?? {}) as JwtClaims;
    return Object.entries(requirements).every(([name, req]) =>
      satisfies(Object.hasOwn(claims, name) ? claims[name] : undefined, req, claims),
    );
  } catch {
    return false;
  }
}

/**
 * Throws 403 `insufficient_scope` unless the principal meets the claim requirements (see
 * {@link hasClaims}); 401 `token_missing` when there is no principal.
 *
 * @example
 * ```ts
 * checkClaims(principal, { email_verified: true });
 * ```
 */
export function checkClaims(
  principal: Principal<unknown> | undefined,
  requirements: ClaimRequirements,
  options: { realm?: string } = {},
): void {
  if (!principal) throw missing(options.realm);
  if (hasClaims(principal, requirements)) return;
  throw authError('insufficient_scope', 'The token does not carry the claims this request needs.', {
    realm: options.realm,
  });
}

function missing(realm: string | undefined): OidcError {
  return authError('token_missing', 'No bearer token was presented.', { realm });
}

/**
 * Checks the scopes an adapter guard is created with, so that a mistake (an empty list, an unset
 * variable) fails at start-up instead of letting every request through. Internal to the adapters.
 */
export function assertScopes(scopes: unknown, guard: string): void {
  const list = typeof scopes === 'string' ? [scopes] : scopes;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) {
    throw new OidcError(
      'config_invalid',
      `${guard}: scopes must be a scope or a non-empty list of scopes (non-empty strings)`,
    );
  }
}

/** Checks the claim requirements an adapter guard is created with (see {@link assertScopes}). */
export function assertClaimRequirements(requirements: unknown, guard: string): void {
  if (typeof requirements === 'function') return;
  const values = typeof requirements === 'object' && requirements !== null ? Object.values(requirements) : [];
  if (values.length === 0 || values.some((r) => r === undefined)) {
    throw new OidcError(
      'config_invalid',
      `${guard}: requirements must be a predicate, or name at least one claim and no undefined value`,
    );
  }
}
