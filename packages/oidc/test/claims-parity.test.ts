import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isOidcError } from '../src/errors.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER } from './helpers.js';

// The claims of a verified token used to be checked by jose's `jwtVerify`; they are now checked by
// this package after jose (or Node) verified the signature alone. This file holds the two to the same
// answer: for generated claim sets, headers and options, the verifier must refuse with exactly the
// code and message that `jwtVerify` + the former mapping of its errors gave, or accept when it
// accepted. The clock is frozen so that the boundaries (exp = now - tolerance, ...) are hit exactly.

const NOW = 1_900_000_000;
const SECRET = 'claims-parity-secret-of-at-least-32-bytes';
const OTHER_AUDIENCE = 'https://other.test';
const REGISTERED_STRINGS = ['sub', 'jti', 'client_id', 'azp', 'scope'];

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW * 1000);
});
afterAll(() => {
  vi.useRealTimers();
});

interface Options {
  clockTolerance: number;
  maxTokenAge: number | undefined;
  requiredClaims: string[];
  requireExp: boolean;
  profile: 'jwt' | 'rfc9068';
}

/** What the former `fromJose` made of a `jwtVerify` error: the specification kept by this test. */
function formerMapping(err: unknown, known: ReadonlySet<string>): { code: string; message: string } {
  const e = err as { code?: string; claim?: string; reason?: string };
  const fixed = {
    token_expired: 'The token has expired.',
    token_not_yet_valid: 'The token is not valid yet.',
    issuer_mismatch: 'The token issuer is not allowed.',
    audience_mismatch: 'The token is not meant for this audience.',
    token_type_invalid: 'The token is not a JWT access token (typ at+jwt).',
    token_malformed: 'The token is malformed.',
    signature_invalid: 'The token signature is invalid.',
  };
  const as = (code: keyof typeof fixed) => ({ code, message: fixed[code] });
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return as('token_expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'iss') return as('issuer_mismatch');
      if (e.claim === 'aud') return as('audience_mismatch');
      if (e.claim === 'typ') return as('token_type_invalid');
      if ((e.claim === 'nbf' || e.claim === 'iat') && e.reason === 'check_failed') {
        return as('token_not_yet_valid');
      }
      return {
        code: 'claim_invalid',
        message:
          e.claim && known.has(e.claim)
            ? `The "${e.claim}" claim is missing or invalid.`
            : 'A claim of the token is missing or invalid.',
      };
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return as('token_malformed');
    default:
      return as('signature_invalid');
  }
}

/** The former checks that ran after `jwtVerify` accepted: registered claim types, then `cnf`. */
function formerAfterJose(payload: Record<string, unknown>): { code: string; message: string } | undefined {
  const invalid = (name: string) => ({
    code: 'claim_invalid',
    message: `The "${name}" claim is missing or invalid.`,
  });
  for (const name of ['exp', 'nbf', 'iat']) {
    if (payload[name] !== undefined && !Number.isFinite(payload[name])) return invalid(name);
  }
  for (const name of REGISTERED_STRINGS) {
    if (payload[name] !== undefined && typeof payload[name] !== 'string') return invalid(name);
  }
  if (Array.isArray(payload.aud) && !payload.aud.every((a) => typeof a === 'string')) return invalid('aud');
  if (Object.hasOwn(payload, 'cnf')) {
    return {
      code: 'token_sender_constrained',
      message: 'The token is bound to a client key (cnf) and cannot be used as a bearer token here.',
    };
  }
  return undefined;
}

const INFINITE = '__infinite__';

/** An HS256 token over exactly this header and payload; `INFINITE` becomes the JSON number 1e999. */
function mint(header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const h = Buffer.from(JSON.stringify({ alg: 'HS256', ...header })).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload).replaceAll(`"${INFINITE}"`, '1e999')).toString('base64url');
  const mac = createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${mac}`;
}

async function expected(token: string, payload: Record<string, unknown>, o: Options) {
  const required = new Set(o.requiredClaims);
  if (o.requireExp) required.add('exp');
  if (o.profile === 'rfc9068')
    for (const c of ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti']) required.add(c);
  const known = new Set([...required, 'iss', 'aud', 'exp', 'nbf', 'iat', ...REGISTERED_STRINGS]);
  // An issuer that is not allowed was, and is, refused before any key is looked up (ADR 0012).
  if (payload.iss !== ISSUER) return { code: 'issuer_mismatch', message: 'The token issuer is not allowed.' };
  try {
    await jwtVerify(token, new TextEncoder().encode(SECRET), {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: [AUDIENCE, OTHER_AUDIENCE],
      clockTolerance: o.clockTolerance,
      maxTokenAge: o.maxTokenAge,
      requiredClaims: [...required],
      typ: o.profile === 'rfc9068' ? 'at+jwt' : undefined,
    });
  } catch (err) {
    return formerMapping(err, known);
  }
  return formerAfterJose(payload) ?? { code: 'ok', message: '' };
}

async function actual(token: string, o: Options) {
  const verifier = createVerifier({
    issuer: ISSUER,
    audience: [AUDIENCE, OTHER_AUDIENCE],
    secret: SECRET,
    cache: false,
    clockTolerance: o.clockTolerance,
    ...(o.maxTokenAge === undefined ? {} : { maxTokenAge: o.maxTokenAge }),
    requiredClaims: o.requiredClaims,
    requireExp: o.requireExp,
    profile: o.profile,
  });
  try {
    await verifier.verify(token);
    return { code: 'ok', message: '' };
  } catch (err) {
    if (!isOidcError(err)) throw err;
    return { code: err.code, message: err.message };
  } finally {
    await verifier.close();
  }
}

const tolerance = fc.constantFrom(0, 5, 60);
const maxAge = fc.constantFrom(undefined, 300);
// Offsets around every boundary the checks have: now, now +/- tolerance, now - maxTokenAge.
const offset = fc.constantFrom(
  -3600,
  -361,
  -360,
  -305,
  -300,
  -295,
  -61,
  -60,
  -59,
  -6,
  -5,
  -4,
  -1,
  0,
  1,
  4,
  5,
  6,
  59,
  60,
  61,
  3600,
);
const time = fc.oneof(
  { weight: 6, arbitrary: offset.map((d) => NOW + d) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('1900000000', null, true, INFINITE, NOW + 0.5, -1, {}) },
);
const audience = fc.constantFrom<unknown>(
  AUDIENCE,
  OTHER_AUDIENCE,
  'https://nope.test',
  [AUDIENCE],
  ['https://nope.test', OTHER_AUDIENCE],
  [],
  [1, AUDIENCE],
  [AUDIENCE, null],
  ['https://nope.test'],
  5,
  null,
  { 0: AUDIENCE },
);
const stringish = fc.constantFrom<unknown>('value', '', 7, null, ['a'], { a: 1 });
const claimsArb = fc.record(
  {
    iss: fc.constantFrom(ISSUER, ISSUER, ISSUER, 'https://evil.test/'),
    aud: audience,
    exp: time,
    nbf: time,
    iat: time,
    sub: stringish,
    jti: stringish,
    client_id: stringish,
    azp: stringish,
    scope: stringish,
    tenant: fc.constantFrom('acme'),
    cnf: fc.constantFrom<unknown>({ jkt: 'x' }, null),
  },
  { requiredKeys: ['iss'] },
);
const headerArb = fc.record(
  {
    typ: fc.constantFrom(
      'at+jwt',
      'AT+JWT',
      'application/at+jwt',
      'Application/AT+jwt',
      'JWT',
      'application/jwt',
      'x/at+jwt',
      'at+jwt ',
    ),
  },
  { requiredKeys: [] },
);
const optionsArb: fc.Arbitrary<Options> = fc.record({
  clockTolerance: tolerance,
  maxTokenAge: maxAge,
  requiredClaims: fc.subarray(['sub', 'jti', 'tenant', 'typ', 'nbf', 'scope', 'iat']),
  requireExp: fc.boolean(),
  profile: fc.constantFrom<'jwt' | 'rfc9068'>('jwt', 'jwt', 'rfc9068'),
});

describe('claims are checked as jose jwtVerify checked them', () => {
  it('gives the same code and message as jwtVerify and the former mapping, for generated tokens and options', async () => {
    await fc.assert(
      fc.asyncProperty(claimsArb, headerArb, optionsArb, async (claims, header, options) => {
        const payload = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
        const token = mint(header, payload);
        const parsedPayload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
        expect(await actual(token, options)).toEqual(await expected(token, parsedPayload, options));
      }),
      { numRuns: 1500 },
    );
  });

  it.each([
    ['exactly at exp - tolerance', { exp: NOW - 5 }, 'token_expired'],
    ['one second before exp - tolerance', { exp: NOW - 4 }, 'ok'],
    ['nbf exactly at now + tolerance', { nbf: NOW + 5 }, 'ok'],
    ['nbf one second after now + tolerance', { nbf: NOW + 6 }, 'token_not_yet_valid'],
    ['exp as a string', { exp: String(NOW + 60) }, 'claim_invalid'],
    ['exp of 1e999', { exp: INFINITE }, 'claim_invalid'],
    ['no aud', { aud: undefined }, 'audience_mismatch'],
    ['no exp', { exp: undefined }, 'claim_invalid'],
  ])('the boundary case %s answers as jwtVerify did', async (_name, change, code) => {
    const options: Options = {
      clockTolerance: 5,
      maxTokenAge: undefined,
      requiredClaims: [],
      requireExp: true,
      profile: 'jwt',
    };
    const payload = Object.fromEntries(
      Object.entries({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: NOW + 60, iat: NOW, ...change }).filter(
        ([, v]) => v !== undefined,
      ),
    );
    const token = mint({ typ: 'at+jwt' }, payload);
    const parsedPayload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
    const got = await actual(token, options);
    expect(got.code).toBe(code);
    expect(got).toEqual(await expected(token, parsedPayload, options));
  });
});
