import type { ConfirmationClaim, JwtClaims, Principal, TokenHeader } from './types.js';

function deepFreeze<T>(value: T, depth = 0): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value) && depth < 32) {
    for (const child of Object.values(value)) {
      if (typeof child === 'object' && child !== null) deepFreeze(child, depth + 1);
    }
    Object.freeze(value);
  }
  return value;
}

function scopesOf(payload: JwtClaims): readonly string[] {
  const found = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string') for (const s of v.split(' ')) if (s) found.add(s);
  };
  add(payload.scope);
  if (Array.isArray(payload.scp)) for (const s of payload.scp) add(s);
  else add(payload.scp);
  return Object.freeze([...found]);
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' ? v : undefined);

/**
 * Builds the frozen principal of a verified token. Everything but `claims` is derived from the
 * verified payload, so a claims schema cannot change who the caller is (nor hide its `cnf`).
 */
export function buildPrincipal<TClaims>(
  payload: JwtClaims,
  claims: TClaims,
  header: TokenHeader,
  confirmation?: ConfirmationClaim,
): Principal<TClaims> {
  const aud = payload.aud;
  // Frozen member by member: the arrays and the header are new here, only the claims need a walk.
  const principal: { -readonly [K in keyof Principal<TClaims>]: Principal<TClaims>[K] } = {
    subject: str(payload.sub),
    issuer: payload.iss as string,
    audience: Object.freeze(
      typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === 'string') : [],
    ),
    scopes: scopesOf(payload),
    clientId: str(payload.client_id) ?? str(payload.azp),
    expiresAt: num(payload.exp),
    issuedAt: num(payload.iat),
    tokenId: str(payload.jti),
    claims: deepFreeze(claims),
    header: Object.freeze(header),
  };
  if (confirmation !== undefined) principal.confirmation = deepFreeze(confirmation);
  return Object.freeze(principal);
}
