import { describe, expectTypeOf, it } from 'vitest';
import type {
  ApprovalCreateResult,
  ApprovalPrincipal,
  ApprovalRecord,
  ApprovalStore,
  Authorization,
  Decision,
  Principal,
} from '../src/types.js';

describe('public types', () => {
  it('only the allow outcome has allowed: true', () => {
    const d = {} as Decision;
    if (d.allowed) expectTypeOf(d.outcome).toEqualTypeOf<'allow'>();
    else expectTypeOf(d.outcome).toEqualTypeOf<'deny' | 'escalate' | 'undefined' | 'unavailable'>();
  });

  it('narrowing on outcome gives the fields of that outcome', () => {
    const d = {} as Decision;
    if (d.outcome === 'escalate') expectTypeOf(d.approval.ttlSeconds).toEqualTypeOf<number>();
    if (d.outcome === 'unavailable') {
      expectTypeOf(d.cause.kind).toEqualTypeOf<
        'down' | 'timeout' | 'http_error' | 'malformed' | 'too_large' | 'unexpected_result' | 'breaker_open'
      >();
      expectTypeOf(d.cached).toEqualTypeOf<false>();
    }
  });

  it('an authorization that escalates carries its approval record', () => {
    const a = {} as Authorization;
    if (a.outcome === 'escalate') expectTypeOf(a.approval.id).toEqualTypeOf<string>();
    if (a.outcome === 'allow') expectTypeOf(a.allowed).toEqualTypeOf<true>();
  });

  it('a store must enforce the create limits and say whether it created the request', () => {
    expectTypeOf<ApprovalStore['create']>().parameters.toEqualTypeOf<
      [ApprovalRecord, { readonly maxPendingPerPrincipal: number }]
    >();
    const r = {} as ApprovalCreateResult;
    if (r.ok) expectTypeOf(r.created).toEqualTypeOf<boolean>();
    else expectTypeOf(r.code).toEqualTypeOf<'approval_limit' | 'approval_store_full'>();
  });

  it('a denial for the approval limit can carry a Retry-After hint', () => {
    const a = {} as Authorization;
    if (a.outcome === 'deny') expectTypeOf(a.retryAfterSeconds).toEqualTypeOf<number | undefined>();
  });

  it('a principal and an approval record carry an optional issuer; a store consumes with it', () => {
    expectTypeOf<Principal['iss']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<ApprovalRecord['principal']>().toEqualTypeOf<ApprovalPrincipal>();
    expectTypeOf<ApprovalPrincipal>().toEqualTypeOf<{ readonly sub: string; readonly iss?: string }>();
    expectTypeOf<Parameters<ApprovalStore['consume']>[1]['iss']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<ApprovalRecord['decidedByIss']>().toEqualTypeOf<string | undefined>();
  });
});
