import type { Request } from 'express';
import type { Context } from 'koa';
import { describe, expectTypeOf, it } from 'vitest';
import * as z from 'zod';
import { isOidcError, type OidcError, type OidcErrorCode } from '../src/errors.js';
import { authenticate as expressAuthenticate, requireScopes } from '../src/express.js';
import type {} from '../src/koa.js';
import { createTestIssuer } from '../src/testing.js';
import type { JwtClaims, Principal, Verifier, VerifierHealth } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';

describe('public types', () => {
  it('a verifier without a schema yields JwtClaims', () => {
    const verifier = createVerifier({ issuer: 'https://i.test/', audience: 'a' });
    expectTypeOf(verifier).toEqualTypeOf<Verifier<JwtClaims>>();
    expectTypeOf(verifier.verify).returns.resolves.toEqualTypeOf<Principal<JwtClaims>>();
    expectTypeOf(verifier.health()).toEqualTypeOf<VerifierHealth>();
  });

  it('a claims schema types principal.claims', () => {
    const verifier = createVerifier({
      issuer: 'https://i.test/',
      audience: 'a',
      claimsSchema: z.object({ tenant: z.enum(['acme', 'globex']), level: z.number() }),
    });
    expectTypeOf(verifier.verify)
      .returns.resolves.toHaveProperty('claims')
      .toEqualTypeOf<Readonly<{ tenant: 'acme' | 'globex'; level: number }>>();
  });

  it('verifyRequest is optional-aware', () => {
    const verifier = createVerifier({ issuer: 'https://i.test/', audience: 'a' });
    expectTypeOf(verifier.verifyRequest({ headers: {} })).resolves.toEqualTypeOf<Principal<JwtClaims>>();
    expectTypeOf(verifier.verifyRequest({ headers: {} }, { optional: true })).resolves.toEqualTypeOf<
      Principal<JwtClaims> | undefined
    >();
  });

  it('principal fields are read-only', () => {
    expectTypeOf<Principal>().toHaveProperty('scopes').toEqualTypeOf<readonly string[]>();
    expectTypeOf<Principal>().toHaveProperty('subject').toEqualTypeOf<string | undefined>();
  });

  it('requires issuer and audience', () => {
    // @ts-expect-error audience is required
    createVerifier({ issuer: 'https://i.test/' });
    // @ts-expect-error issuer is required
    createVerifier({ audience: 'a' });
  });

  it('the error guard narrows to OidcError with a code union', () => {
    const e: unknown = new Error();
    if (isOidcError(e)) {
      expectTypeOf(e).toEqualTypeOf<OidcError>();
      expectTypeOf(e.code).toEqualTypeOf<OidcErrorCode>();
    }
  });

  it('Express: req.amas.auth is a typed principal; authenticate exposes its verifier', () => {
    expectTypeOf<Request['amas']>().toEqualTypeOf<AmasRequestState | undefined>();
    expectTypeOf<NonNullable<Request['amas']>['auth']>().toEqualTypeOf<Principal<JwtClaims> | undefined>();
    const auth = expressAuthenticate({ issuer: 'https://i.test/', audience: 'a' });
    expectTypeOf(auth.verifier).toEqualTypeOf<Verifier<JwtClaims>>();
    expectTypeOf(requireScopes).parameter(1).toMatchTypeOf<{ mode?: 'all' | 'any' } | undefined>();
  });

  it('Koa: ctx.state.amas.auth is a typed principal', () => {
    expectTypeOf<Context['state']['amas']>().toEqualTypeOf<AmasRequestState | undefined>();
  });

  it('the test issuer mints strings', () => {
    expectTypeOf(createTestIssuer).returns.resolves.toHaveProperty('mint').returns.resolves.toBeString();
  });
});
