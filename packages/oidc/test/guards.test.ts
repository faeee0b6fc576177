import { beforeAll, describe, expect, it } from 'vitest';
import { checkClaims, checkScopes, hasClaims, hasScopes } from '../src/guards.js';
import type { Principal } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, makeKey, sign } from './helpers.js';

let principal: Principal;

beforeAll(async () => {
  const key = await makeKey('ES256');
  const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: [key.publicJwk] });
  principal = await verifier.verify(
    await sign(key, {
      scope: 'tools:read tools:run',
      tenant: 'acme',
      roles: ['reviewer', 'auditor'],
      groups: 'eng ops',
      level: 3,
      email_verified: true,
    }),
  );
});

describe('scopes', () => {
  it('requires all scopes by default', () => {
    expect(hasScopes(principal, ['tools:read', 'tools:run'])).toBe(true);
    expect(hasScopes(principal, ['tools:read', 'tools:admin'])).toBe(false);
    expect(hasScopes(principal, 'tools:run')).toBe(true);
  });

  it('requires one scope with mode any', () => {
    expect(hasScopes(principal, ['tools:admin', 'tools:run'], { mode: 'any' })).toBe(true);
    expect(hasScopes(principal, ['tools:admin', 'root'], { mode: 'any' })).toBe(false);
  });

  it('does not match scope prefixes or substrings', () => {
    expect(hasScopes(principal, 'tools')).toBe(false);
    expect(hasScopes(principal, 'tools:rea')).toBe(false);
  });

  it('throws 403 insufficient_scope with the scopes required, and 401 without a principal', () => {
    expect(() => checkScopes(principal, ['tools:admin'])).toThrow(
      expect.objectContaining({
        code: 'insufficient_scope',
        status: 403,
        headers: expect.objectContaining({
          'WWW-Authenticate': expect.stringContaining('scope="tools:admin"'),
        }),
      }),
    );
    expect(() => checkScopes(undefined, 'tools:run')).toThrow(
      expect.objectContaining({ code: 'token_missing', status: 401 }),
    );
  });
});

describe('claims', () => {
  it('checks equality, includes (list or space-delimited), oneOf and predicates', () => {
    expect(hasClaims(principal, { tenant: 'acme', level: 3, email_verified: true })).toBe(true);
    expect(hasClaims(principal, { roles: { includes: 'auditor' }, groups: { includes: 'ops' } })).toBe(true);
    expect(hasClaims(principal, { tenant: { oneOf: ['globex', 'acme'] } })).toBe(true);
    expect(hasClaims(principal, { level: (v) => typeof v === 'number' && v >= 3 })).toBe(true);
    expect(hasClaims(principal, { tenant: { equals: 'acme' } })).toBe(true);
  });

  it('fails closed on mismatches, missing claims, type confusion and throwing predicates', () => {
    expect(hasClaims(principal, { tenant: 'globex' })).toBe(false);
    expect(hasClaims(principal, { missing: 'x' })).toBe(false);
    expect(hasClaims(principal, { level: '3' })).toBe(false);
    expect(hasClaims(principal, { groups: { includes: 'en' } })).toBe(false);
    expect(hasClaims(principal, { roles: { includes: 'admin' } })).toBe(false);
    expect(
      hasClaims(principal, {
        tenant: () => {
          throw new Error('x');
        },
      }),
    ).toBe(false);
    expect(hasClaims(principal, { constructor: (v: unknown) => v !== undefined })).toBe(false);
  });

  it('accepts one predicate over the whole principal', () => {
    expect(hasClaims(principal, (p) => p.subject === 'user-1' && p.scopes.includes('tools:run'))).toBe(true);
    expect(hasClaims(principal, (p) => p.clientId === 'nobody')).toBe(false);
  });

  it('throws 403 insufficient_scope, and 401 without a principal', () => {
    expect(() => checkClaims(principal, { tenant: 'globex' })).toThrow(
      expect.objectContaining({ code: 'insufficient_scope', status: 403 }),
    );
    expect(() => checkClaims(undefined, { tenant: 'acme' })).toThrow(
      expect.objectContaining({ code: 'token_missing' }),
    );
  });
});
