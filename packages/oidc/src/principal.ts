import type { ConfirmationClaim, JwtClaims, Principal, TokenHeader } from './types.js';

function deepFreeze<T>(value: T, depth = 0): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value) && depth < 32) {
    for (const child of Object.values(value)) deepFreeze(child, depth + 1);
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
  return deepFreeze({
    subject: str(payload.sub),
    issuer: payload.iss as string,
    audience:
      typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === 'string') : [],
    scopes: scopesOf(payload),
    clientId: str(payload.client_id) ?? str(payload.azp),
    expiresAt: num(payload.exp),
    issuedAt: num(payload.iat),
    tokenId: str(payload.jti),
    claims,
    header,
    ...(confirmation === undefined ? {} : { confirmation }),
  });
}
