import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// Every package has one error family with a name-independent guard. These tests run against the
// built `dist` (ESM and CommonJS), because the dual-package hazard only exists there.
const require = createRequire(import.meta.url);

const families = [
  { pkg: '@amas/oidc', cls: 'OidcError', guard: 'isOidcError', code: 'token_expired', status: 401 },
  { pkg: '@amas/opa', cls: 'OpaError', guard: 'isOpaError', code: 'policy_unavailable', status: 503 },
  {
    pkg: '@amas/contracts',
    cls: 'ContractError',
    guard: 'isContractError',
    code: 'budget_exhausted',
    status: 429,
  },
  {
    pkg: '@amas/otel',
    cls: 'TelemetryError',
    guard: 'isTelemetryError',
    code: 'config_invalid',
    status: 500,
  },
] as const;

type Family = Record<string, unknown>;
type ErrorCtor = new (code: string, message: string, options?: object) => Error & Record<string, unknown>;

describe.each(families)('$pkg error family', ({ pkg, cls, guard, code, status }) => {
  it('carries a stable code, the default status, frozen headers and the cause', async () => {
    const esm = (await import(pkg)) as Family;
    const Ctor = esm[cls] as ErrorCtor;
    const cause = new Error('inner');
    const err = new Ctor(code, 'human readable', { headers: { 'x-a': '1' }, cause });
    expect(err.name).toBe(cls);
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.headers).toEqual({ 'x-a': '1' });
    expect(Object.isFrozen(err.headers)).toBe(true);
    expect(err.cause).toBe(cause);
    expect(JSON.parse(JSON.stringify(err))).toEqual({ error: code, message: 'human readable' });
  });

  it('is recognised across the ESM and CommonJS copies, where instanceof fails', async () => {
    const esm = (await import(pkg)) as Family;
    const cjs = require(pkg) as Family;
    const fromCjs = new (cjs[cls] as ErrorCtor)(code, 'from cjs');
    const fromEsm = new (esm[cls] as ErrorCtor)(code, 'from esm');
    expect(fromCjs instanceof (esm[cls] as ErrorCtor)).toBe(false);
    expect((esm[guard] as (v: unknown) => boolean)(fromCjs)).toBe(true);
    expect((cjs[guard] as (v: unknown) => boolean)(fromEsm)).toBe(true);
  });

  it('does not mistake look-alikes for its errors', async () => {
    const isX = ((await import(pkg)) as Family)[guard] as (v: unknown) => boolean;
    for (const v of [null, undefined, 'x', 42, new Error('x'), { name: cls, code, status }]) {
      expect(isX(v)).toBe(false);
    }
  });
});
