import { authError, type ChallengeContext } from './challenge.js';
import type { OidcError } from './errors.js';
import { claimMessage, MESSAGES } from './messages.js';
import type { ResolvedConfig } from './options.js';
import type { JwtClaims } from './types.js';

/** What the claims of a token are checked against, resolved once per verifier. */
export interface ClaimRules {
  readonly clockTolerance: number;
  readonly maxTokenAge: number | undefined;
  /** Claims that must be present, in the order jose checks them (`iss`, `aud`, `iat`, then the required ones). */
  readonly presence: readonly string[];
  /** The `typ` header the profile requires, normalised (`application/at+jwt`), or none. */
  readonly typ: string | undefined;
}

export const REGISTERED_STRINGS = ['sub', 'jti', 'client_id', 'azp', 'scope'] as const;
const TIME_CLAIMS = ['exp', 'nbf', 'iat'] as const;

/** RFC 8725 3.11 as jose applies it: case-insensitive, `application/` implied without a slash. */
function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return value.includes('/') ? lower : `application/${lower}`;
}

/**
 * Resolves the claim rules of a configuration. The presence order is jose's
 * (`new Set([...requiredClaims, iat?, 'aud', 'iss'].reverse())`), so that a token missing several
 * claims is refused for the same one as before.
 */
export function claimRules(config: ResolvedConfig): ClaimRules {
  const wanted = [...config.requiredClaims];
  if (config.maxTokenAge !== undefined) wanted.push('iat');
  wanted.push('aud', 'iss');
  return Object.freeze({
    clockTolerance: config.clockTolerance,
    maxTokenAge: config.maxTokenAge,
    presence: Object.freeze([...new Set(wanted.reverse())]),
    typ: config.profile === 'rfc9068' ? normalizeTyp('at+jwt') : undefined,
  });
}

const invalid = (name: string, ctx: ChallengeContext): OidcError =>
  authError('claim_invalid', claimMessage(name), ctx);

/** The error for a claim that is missing, mapped as jose's `claim` member always was. */
function missing(name: string, ctx: ChallengeContext): OidcError {
  switch (name) {
    case 'iss':
      return authError('issuer_mismatch', MESSAGES.issuer_mismatch, ctx);
    case 'aud':
      return authError('audience_mismatch', MESSAGES.audience_mismatch, ctx);
    case 'typ':
      return authError('token_type_invalid', MESSAGES.token_type_invalid, ctx);
    default:
      return invalid(name, ctx);
  }
}

function audienceMatches(aud: unknown, audience: readonly string[]): boolean {
  if (typeof aud === 'string') return audience.includes(aud);
  if (!Array.isArray(aud)) return false;
  for (const a of audience) if (aud.includes(a)) return true;
  return false;
}

/**
 * Checks the claims of a token whose signature is verified, exactly as jose's `jwtVerify` did with
 * the options this package gave it (same checks, same order, so the same error code for every token),
 * and then the registered claims jose leaves alone. Throws an {@link OidcError}.
 *
 * The order: `typ` (RFC 9068); presence (`iss`, `aud`, `iat` with `maxTokenAge`, required claims);
 * `iss`; `aud`; `iat` is a number; `nbf` is a number and not in the future; `exp` is a number and
 * not past; `maxTokenAge`; then `exp`/`nbf`/`iat` finite, `sub`/`jti`/`client_id`/`azp`/`scope`
 * strings, every `aud` member a string.
 */
export function checkClaims(
  payload: JwtClaims,
  typ: string | undefined,
  issuer: string,
  audience: readonly string[],
  rules: ClaimRules,
  nowMs: number,
  ctx: ChallengeContext,
): void {
  if (rules.typ !== undefined && (typeof typ !== 'string' || normalizeTyp(typ) !== rules.typ)) {
    throw authError('token_type_invalid', MESSAGES.token_type_invalid, ctx);
  }
  for (const name of rules.presence) {
    if (!Object.hasOwn(payload, name)) throw missing(name, ctx);
  }
  if (payload.iss !== issuer) throw authError('issuer_mismatch', MESSAGES.issuer_mismatch, ctx);
  if (!audienceMatches(payload.aud, audience)) {
    throw authError('audience_mismatch', MESSAGES.audience_mismatch, ctx);
  }
  const tolerance = rules.clockTolerance;
  const now = Math.floor(nowMs / 1000);
  const { iat, nbf, exp } = payload;
  if (iat !== undefined && typeof iat !== 'number') throw invalid('iat', ctx);
  if (nbf !== undefined) {
    if (typeof nbf !== 'number') throw invalid('nbf', ctx);
    if (nbf > now + tolerance) throw authError('token_not_yet_valid', MESSAGES.token_not_yet_valid, ctx);
  }
  if (exp !== undefined) {
    if (typeof exp !== 'number') throw invalid('exp', ctx);
    if (exp <= now - tolerance) throw authError('token_expired', MESSAGES.token_expired, ctx);
  }
  if (rules.maxTokenAge !== undefined) {
    const age = now - (iat as number);
    if (age - tolerance > rules.maxTokenAge) throw authError('token_expired', MESSAGES.token_expired, ctx);
    if (age < -tolerance) throw authError('token_not_yet_valid', MESSAGES.token_not_yet_valid, ctx);
  }
  checkRegisteredClaims(payload, ctx);
}

/** Registered claims of the wrong type, which jose does not look at: always `claim_invalid`. */
function checkRegisteredClaims(payload: JwtClaims, ctx: ChallengeContext): void {
  for (const name of TIME_CLAIMS) {
    if (payload[name] !== undefined && !Number.isFinite(payload[name])) throw invalid(name, ctx);
  }
  for (const name of REGISTERED_STRINGS) {
    if (payload[name] !== undefined && typeof payload[name] !== 'string') throw invalid(name, ctx);
  }
  // jose only asks that one member names the audience; the rest must be strings too (RFC 7519 4.1.3),
  // or `principal.audience` and `claims.aud` would tell different stories.
  const { aud } = payload;
  if (Array.isArray(aud) && !aud.every((a) => typeof a === 'string')) throw invalid('aud', ctx);
}
