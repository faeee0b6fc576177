/** The fixed messages of the token errors: never a value taken from the token or the request. */
export const MESSAGES = {
  token_expired: 'The token has expired.',
  token_not_yet_valid: 'The token is not valid yet.',
  issuer_mismatch: 'The token issuer is not allowed.',
  audience_mismatch: 'The token is not meant for this audience.',
  algorithm_not_allowed: 'The token algorithm is not allowed.',
  signature_invalid: 'The token signature is invalid.',
  token_type_invalid: 'The token is not a JWT access token (typ at+jwt).',
  token_sender_constrained:
    'The token is bound to a client key (cnf) and cannot be used as a bearer token here.',
  token_malformed: 'The token is malformed.',
  claim_invalid: 'A claim of the token is missing or invalid.',
} as const;

/** The message of `claim_invalid` for a named claim. */
export const claimMessage = (name: string): string => `The "${name}" claim is missing or invalid.`;
