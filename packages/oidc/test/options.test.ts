import { describe, expect, it } from 'vitest';
import { isOidcError } from '../src/errors.js';
import type { VerifierOptions } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { makeKey } from './helpers.js';

function problem(options: unknown): string {
  try {
    createVerifier(options as VerifierOptions);
  } catch (err) {
    expect(isOidcError(err) && err.code).toBe('config_invalid');
    return (err as Error).message;
  }
  throw new Error('expected createVerifier to throw');
}

const base = { issuer: 'https://login.test/', audience: 'https://api.test' };

describe('options are validated once, at the factory, with messages that name the option', () => {
  it('requires audience and says what it is', () => {
    expect(problem({ issuer: base.issuer })).toContain(
      "audience: is required: set it to this API's identifier",
    );
  });

  it('requires issuer', () => {
    expect(problem({ audience: base.audience })).toContain('issuer: is required');
  });

  it('refuses unknown options (typos)', () => {
    expect(problem({ ...base, audiences: ['x'] })).toContain('Unrecognized key: "audiences"');
    expect(problem({ ...base, jwks: { ttl: 5 } })).toMatch(/jwks: Unrecognized key: "ttl"/);
  });

  it('never allows alg none', () => {
    expect(problem({ ...base, algorithms: ['RS256', 'none'] })).toContain(
      'algorithms[1]: "none" is never allowed',
    );
  });

  it('refuses unknown algorithms', () => {
    expect(problem({ ...base, algorithms: ['RS1'] })).toContain('algorithms[0]: must be one of RS256');
  });

  it('refuses HMAC algorithms without a secret', () => {
    expect(problem({ ...base, algorithms: ['RS256', 'HS256'] })).toContain(
      'algorithms: HS256 needs an explicit `secret`',
    );
  });

  it('never mixes HMAC and public-key algorithms for one issuer', () => {
    const secret = 'x'.repeat(64);
    expect(problem({ ...base, secret, algorithms: ['HS256', 'RS256'] })).toContain(
      'HMAC and public-key algorithms are never mixed',
    );
  });

  it('refuses a short HMAC secret, per algorithm', () => {
    expect(problem({ ...base, secret: 'short' })).toContain(
      'issuer.secret: HS256 needs a secret of at least 32 bytes',
    );
    expect(problem({ ...base, secret: 'x'.repeat(40), algorithms: ['HS512'] })).toContain(
      'HS512 needs a secret of at least 64 bytes',
    );
  });

  it('allows one key source per issuer', async () => {
    const key = await makeKey('ES256');
    expect(problem({ ...base, jwksUri: 'https://login.test/jwks', keys: [key.publicJwk] })).toContain(
      'issuer: give only one of jwksUri, keys and secret',
    );
  });

  it('refuses shorthand key sources with several issuers or a resolver', () => {
    expect(
      problem({ ...base, issuer: ['https://a.test/', 'https://b.test/'], jwksUri: 'https://a.test/jwks' }),
    ).toContain("jwksUri: only applies to a single string issuer; put it in the issuer's options");
    expect(problem({ ...base, issuer: () => true, jwksUri: 'https://a.test/jwks' })).toContain(
      'jwksUri: does not apply to a resolver',
    );
  });

  it('requires https for fetched URLs, except on loopback or when allowed', () => {
    expect(problem({ ...base, issuer: 'http://login.test/' })).toContain(
      'issuer: keys are discovered from the issuer URL, which must be an https: URL',
    );
    expect(problem({ ...base, jwksUri: 'http://login.test/jwks' })).toContain(
      'issuer.jwksUri: must be an https: URL',
    );
    expect(() => createVerifier({ ...base, issuer: 'http://127.0.0.1:8080/' })).not.toThrow();
    expect(() =>
      createVerifier({ ...base, issuer: 'http://keycloak:8080/realms/a', allowInsecureHttp: true }),
    ).not.toThrow();
  });

  it('refuses an issuer that is not a URL unless its keys are given', async () => {
    expect(problem({ ...base, issuer: 'my-issuer' })).toContain(
      'issuer: keys are discovered from the issuer URL, which is not a valid URL',
    );
    const key = await makeKey('ES256');
    expect(() => createVerifier({ ...base, issuer: 'my-issuer', keys: [key.publicJwk] })).not.toThrow();
  });

  it('refuses URLs with credentials', () => {
    expect(problem({ ...base, jwksUri: 'https://user:pass@login.test/jwks' })).toContain(
      'must not contain credentials',
    );
  });

  it('refuses private, symmetric and unsupported static keys by index', async () => {
    const key = await makeKey('ES256');
    const { exportJWK } = await import('jose');
    const privateJwk = await exportJWK(key.privateKey);
    const message = problem({
      ...base,
      keys: [key.publicJwk, privateJwk, { kty: 'oct', k: 'abc' }, { kty: 'XYZ' }],
    });
    expect(message).toContain('issuer.keys[1]: contains private or symmetric key material');
    expect(message).toContain('issuer.keys[2]: contains private or symmetric key material');
    expect(message).toContain('issuer.keys[3]: has an unsupported key type');
  });

  it('refuses RSA keys with a public exponent of 0 or 1, naming the key', async () => {
    const key = await makeKey('RS256');
    for (const e of ['AA', 'AAAA', 'AQ', 'AAAB']) {
      expect(problem({ ...base, keys: [key.publicJwk, { ...key.publicJwk, e }] })).toContain(
        'issuer.keys[1]: has an unsafe RSA public exponent',
      );
    }
    expect(() => createVerifier({ ...base, keys: [key.publicJwk] })).not.toThrow();
  });

  it('refuses duplicate issuers', () => {
    expect(problem({ ...base, issuer: [base.issuer, { issuer: base.issuer }] })).toContain(
      'issuer[1]: "https://login.test/" is listed twice',
    );
  });

  it('checks units and bounds of durations', () => {
    expect(problem({ ...base, jwks: { timeout: 5000 } })).toContain(
      'jwks.timeout: is in seconds and must be at most 60',
    );
    expect(problem({ ...base, clockTolerance: -1 })).toContain('clockTolerance: must not be negative');
    expect(problem({ ...base, jwks: { cacheTtl: 60, refreshAhead: 60 } })).toContain(
      'jwks.refreshAhead: must be shorter than jwks.cacheTtl',
    );
  });

  it('accepts senderConstrained reject or allow only, and says what each means', () => {
    expect(() => createVerifier({ ...base, senderConstrained: 'allow' })).not.toThrow();
    expect(() => createVerifier({ ...base, senderConstrained: 'reject' })).not.toThrow();
    for (const value of ['ignore', true, 'Allow']) {
      expect(problem({ ...base, senderConstrained: value })).toContain(
        "senderConstrained: must be 'reject' (refuse tokens with a cnf claim, the default) or 'allow'",
      );
    }
  });

  it('checks resolverCache: only with a resolver, durations in seconds, bounded', () => {
    const resolver = () => true;
    expect(() =>
      createVerifier({
        ...base,
        issuer: resolver,
        resolverCache: { ttl: 60, refusalTtl: 0, maxRefusals: 5 },
      }),
    ).not.toThrow();
    expect(problem({ ...base, resolverCache: { ttl: 60 } })).toContain(
      'resolverCache: only applies when issuer is a resolver function',
    );
    expect(problem({ ...base, issuer: resolver, resolverCache: { ttl: 300_000 } })).toContain(
      'resolverCache.ttl: is in seconds and must be at most 86400',
    );
    expect(problem({ ...base, issuer: resolver, resolverCache: { ttl: 0 } })).toContain(
      'resolverCache.ttl: must be at least 1 second',
    );
    expect(problem({ ...base, issuer: resolver, resolverCache: { refusalTtl: -1 } })).toContain(
      'resolverCache.refusalTtl: must not be negative',
    );
    expect(problem({ ...base, issuer: resolver, resolverCache: { maxRefusals: 0 } })).toContain(
      'resolverCache.maxRefusals:',
    );
    expect(problem({ ...base, issuer: resolver, resolverCache: { tll: 5 } })).toMatch(
      /resolverCache: Unrecognized key: "tll"/,
    );
  });

  it('caps maxTokenLength below the size where V8 stops hashing whole strings', () => {
    expect(problem({ ...base, maxTokenLength: 65_536 })).toContain('maxTokenLength: must be at most 16000');
  });

  it('names the expected signature of function options', () => {
    expect(problem({ ...base, claimValidators: { tenant: 'acme' } })).toContain(
      'claimValidators.tenant: must be a function: (value, claims) => boolean',
    );
    expect(problem({ ...base, fetch: 'node-fetch' })).toContain('fetch: must be a function: the fetch API');
  });

  it('refuses a claimsSchema that is not a Standard Schema', () => {
    expect(problem({ ...base, claimsSchema: { parse: () => ({}) } })).toContain(
      'claimsSchema: must be a Standard Schema',
    );
  });

  it('reports every problem at once', () => {
    const message = problem({ issuer: 42, audience: [], clockTolerance: 'x' });
    expect(message).toContain('issuer:');
    expect(message).toContain('audience:');
    expect(message).toContain('clockTolerance:');
  });

  it('does not depend on the caller keeping the options unchanged (the config is a snapshot)', async () => {
    const key = await makeKey('ES256');
    const options = { ...base, audience: ['https://api.test'], keys: [key.publicJwk] };
    const verifier = createVerifier(options);
    options.audience.push('https://evil.test');
    const { sign } = await import('./helpers.js');
    await expect(
      verifier.verify(await sign(key, { iss: base.issuer, aud: 'https://evil.test' })),
    ).rejects.toMatchObject({
      code: 'audience_mismatch',
    });
  });
});
