import type { Request } from 'express';
import type { Context } from 'koa';
import { describe, expectTypeOf, it } from 'vitest';
import * as z from 'zod';
import { isOidcError, type OidcError, type OidcErrorCode } from '../src/errors.js';
import { authenticate as expressAuthenticate, requireScopes } from '../src/express.js';
import type {} from '../src/koa.js';
import { createTestIssuer } from '../src/testing.js';
import type {
  ConfirmationClaim,
  JwtClaims,
  Principal,
  Verifier,
  VerifierHealth,
  VerifierOptions,
} from '../src/types.js';
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

  it('sender-constrained tokens: a two-valued option and a read-only confirmation', () => {
    expectTypeOf<VerifierOptions['senderConstrained']>().toEqualTypeOf<'reject' | 'allow' | undefined>();
    expectTypeOf<Principal>()
      .toHaveProperty('confirmation')
      .toEqualTypeOf<Readonly<ConfirmationClaim> | undefined>();
    expectTypeOf<OidcErrorCode>()
      .extract<'token_sender_constrained'>()
      .toEqualTypeOf<'token_sender_constrained'>();
    // @ts-expect-error only 'reject' and 'allow'
    createVerifier({ issuer: 'https://i.test/', audience: 'a', senderConstrained: 'ignore' });
  });

  it('resolverCache takes durations in seconds', () => {
    createVerifier({
      issuer: () => true,
      audience: 'a',
      resolverCache: { ttl: 60, refusalTtl: 5, maxRefusals: 10, failureCooldown: 2, maxPending: 16 },
    });
    // @ts-expect-error a number of seconds, not a string
    createVerifier({ issuer: () => true, audience: 'a', resolverCache: { failureCooldown: '2' } });
    // @ts-expect-error unknown member
    createVerifier({ issuer: () => true, audience: 'a', resolverCache: { tll: 60 } });
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
