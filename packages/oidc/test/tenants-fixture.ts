import { afterAll, afterEach } from 'vitest';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import type { IssuerResolver, Verifier, VerifierOptions } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE } from './helpers.js';

/**
 * One test issuer per tenant, each served under `/t/<name>` on 127.0.0.1, for the multi-tenant
 * tests; closed after the file's tests. Call it at the top of a test file:
 * `const { acme, globex } = await tenantIssuers('acme', 'globex');`
 */
export async function tenantIssuers<N extends string>(...names: N[]): Promise<Record<N, TestIssuer>> {
  const issuers = await Promise.all(
    names.map((name) => createTestIssuer({ audience: AUDIENCE, path: `/t/${name}` })),
  );
  afterAll(async () => {
    await Promise.all(issuers.map((issuer) => issuer.close()));
  });
  return Object.fromEntries(names.map((name, i) => [name, issuers[i]])) as Record<N, TestIssuer>;
}

/**
 * A factory of verifiers whose issuer is a resolver (audience {@link AUDIENCE}, then `defaults`, then
 * the call's own options), each closed after the test that made it.
 */
export function resolverVerifiers(
  defaults: Partial<VerifierOptions> = {},
): (resolver: IssuerResolver, extra?: Partial<VerifierOptions>) => Verifier {
  const made: Verifier[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((v) => v.close()));
  });
  return (resolver, extra = {}) => {
    const v = createVerifier({ issuer: resolver, audience: AUDIENCE, ...defaults, ...extra });
    made.push(v);
    return v;
  };
}
