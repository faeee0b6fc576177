import type { Redis } from 'ioredis';
import { describe, expectTypeOf, it } from 'vitest';
import type {} from '../src/express.js';
import type {} from '../src/koa.js';
import type { Action, DenyCode, RedisLike, Registry, Verdict } from '../src/types.js';

describe('public types', () => {
  it('an ioredis client is a RedisLike', () => {
    expectTypeOf<Redis>().toExtend<RedisLike>();
  });

  it('a verdict narrows on allowed, and only a denial carries a code other than allowed', () => {
    expectTypeOf<Extract<Verdict, { allowed: true }>['code']>().toEqualTypeOf<'allowed'>();
    expectTypeOf<Extract<Verdict, { allowed: false }>['code']>().toEqualTypeOf<DenyCode>();
    expectTypeOf<Registry['check']>().returns.toEqualTypeOf<Promise<Verdict>>();
  });

  it('an action carries an approval only as an object with an id', () => {
    expectTypeOf<Action['approval']>().toEqualTypeOf<{ readonly id: string } | undefined>();
  });
});

describe('request state', () => {
  it('types req.amas.contracts (Express) and ctx.state.amas.contracts (Koa) as verdicts', () => {
    expectTypeOf<NonNullable<import('express').Request['amas']>['contracts']>().toEqualTypeOf<
      Verdict | undefined
    >();
    expectTypeOf<NonNullable<import('koa').DefaultState['amas']>['contracts']>().toEqualTypeOf<
      Verdict | undefined
    >();
  });
});
