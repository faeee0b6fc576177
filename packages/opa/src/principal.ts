import type { ApprovalPrincipal, Principal } from './types.js';

/**
 * The longest `iss` the approval workflow accepts (an issuer is a URL; 2,048 characters is more than
 * any real one). A longer one makes the principal invalid (`unauthenticated`), never truncated.
 *
 * @example
 * ```ts
 * if (iss.length > MAX_ISSUER_LENGTH) throw new Error('issuer too long');
 * ```
 */
export const MAX_ISSUER_LENGTH = 2_048;

/**
 * Whether a value is a usable principal for the approval workflow: a non-empty string `sub`, and an
 * `iss` that is absent (`undefined`) or a non-empty string of at most {@link MAX_ISSUER_LENGTH}
 * characters. Anything else (a number, `null`, `''`, a huge string as `iss`) is invalid rather than
 * read as "no issuer", so a malformed issuer can never make two principals the same.
 *
 * @example
 * ```ts
 * isValidPrincipal({ sub: 'alice', iss: 'https://idp-a.example.com/' }); // true
 * isValidPrincipal({ sub: 'alice', iss: '' }); // false
 * ```
 */
export function isValidPrincipal(value: unknown): value is Principal {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as { sub?: unknown; iss?: unknown };
  if (typeof p.sub !== 'string' || p.sub === '') return false;
  return (
    p.iss === undefined || (typeof p.iss === 'string' && p.iss !== '' && p.iss.length <= MAX_ISSUER_LENGTH)
  );
}

/**
 * Whether two principals are the same person in the approval workflow: the same `sub` and the same
 * `iss`, where an absent `iss` equals only an absent `iss` (no wildcard in either direction).
 *
 * @example
 * ```ts
 * samePrincipal({ sub: 'alice', iss: 'A' }, { sub: 'alice', iss: 'B' }); // false
 * samePrincipal({ sub: 'alice' }, { sub: 'alice', iss: 'A' }); // false
 * ```
 */
export function samePrincipal(
  a: { readonly sub?: unknown; readonly iss?: unknown } | undefined,
  b: { readonly sub?: unknown; readonly iss?: unknown } | undefined,
): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    typeof a.sub === 'string' &&
    a.sub === b.sub &&
    (a.iss === undefined ? b.iss === undefined : typeof a.iss === 'string' && a.iss === b.iss)
  );
}

/**
 * The frozen `{ sub, iss? }` an approval record keeps of a valid principal (scopes dropped).
 *
 * @example
 * ```ts
 * approvalPrincipal({ sub: 'alice', iss: 'A', scopes: ['x'] }); // { sub: 'alice', iss: 'A' }
 * ```
 */
export function approvalPrincipal(p: Principal): ApprovalPrincipal {
  return Object.freeze(p.iss === undefined ? { sub: p.sub } : { sub: p.sub, iss: p.iss });
}
