import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryBudgetStore } from '../src/memory-store.js';
import { createRegistry } from '../src/registry.js';
import type { Verdict } from '../src/types.js';
import { sampleContract } from './helpers/contracts.js';

const CODES = [
  'allowed',
  'role_unknown',
  'tool_not_allowed',
  'input_invalid',
  'action_invalid',
  'budget_exhausted',
  'approval_required',
  'budget_store_unavailable',
];

// A contract whose schema accepts anything, so only the pre-checks stand between input and the tool.
const open = () =>
  createRegistry({
    contracts: [
      {
        name: 'open',
        version: '1.0.0',
        description: 'Accepts any input.',
        tools: { any: { input: {}, output: {} } },
      },
      sampleContract(),
    ],
  });

const check = (input: unknown) => open().check({ role: 'open', tool: 'any', input, principal: 'p' });

function expectPrototypesClean() {
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted).toBeUndefined();
  expect(probe.isAdmin).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(Object.keys(Array.prototype)).toEqual([]);
}

describe('attacks on the input: one test per case', () => {
  it('refuses a "__proto__" key from JSON.parse and pollutes nothing', async () => {
    const v = await check(JSON.parse('{"__proto__": {"isAdmin": true}}'));
    expect(v).toMatchObject({ code: 'input_invalid', errors: [{ path: '/__proto__' }] });
    expectPrototypesClean();
  });

  it('refuses a nested "__proto__" key', async () => {
    const v = await check(JSON.parse('{"a": {"b": [{"__proto__": {"polluted": 1}}]}}'));
    expect(v).toMatchObject({ code: 'input_invalid', errors: [{ path: '/a/b/0/__proto__' }] });
    expectPrototypesClean();
  });

  it('refuses a "constructor"/"prototype" chain', async () => {
    const v = await check(JSON.parse('{"constructor": {"prototype": {"polluted": 1}}}'));
    expect(v).toMatchObject({ code: 'input_invalid', errors: [{ path: '/constructor' }] });
    expectPrototypesClean();
  });

  it('refuses nesting 100,000 levels deep without overflowing the stack', async () => {
    let deep: unknown = {};
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect((await check(deep)).code).toBe('input_invalid');
    let arr: unknown = [];
    for (let i = 0; i < 100_000; i++) arr = [arr];
    expect(await check(arr)).toMatchObject({
      code: 'input_invalid',
      message: expect.stringMatching(/nested deeper than 32/),
    });
  });

  it('refuses a cyclic object', async () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect((await check(a)).code).toBe('input_invalid');
  });

  it('refuses a huge string quickly', async () => {
    const started = Date.now();
    const v = await check({ s: 'x'.repeat(5_000_000) });
    expect(v).toMatchObject({
      code: 'input_invalid',
      errors: [{ path: '/s', message: expect.stringMatching(/longer than/) }],
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses a huge key', async () => {
    expect((await check({ ['k'.repeat(2_000_000)]: 1 })).code).toBe('input_invalid');
  });

  it('refuses a huge array', async () => {
    expect(await check({ a: new Array(200_000).fill(0) })).toMatchObject({
      code: 'input_invalid',
      errors: [{ path: '/a' }],
    });
  });

  it('refuses an object with too many keys', async () => {
    const o = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, i]));
    expect((await check(o)).code).toBe('input_invalid');
  });

  it('refuses too many values in total, even when each part is within its limits', async () => {
    const wide = Array.from({ length: 100 }, () => Array.from({ length: 2_000 }, () => 1));
    expect(await check(wide)).toMatchObject({
      code: 'input_invalid',
      message: expect.stringMatching(/more than 100000 values/),
    });
  });

  it('refuses values JSON cannot hold', async () => {
    class Thing {
      x = 1;
    }
    const values: unknown[] = [
      undefined,
      () => 1,
      Symbol('s'),
      10n,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      new Date(),
      new Map([[1, 2]]),
      new Set([1]),
      new Thing(),
      Buffer.from('x'),
      new Uint8Array(2),
      /re/,
      // biome-ignore lint/suspicious/noSparseArray: a sparse array is the case under test
      [1, , 3],
    ];
    for (const value of values) {
      const v = await check({ value });
      expect(v.code, String(typeof value)).toBe('input_invalid');
    }
  });

  it('answers a throwing getter in the input with a verdict, not an exception', async () => {
    const input = {
      get x() {
        throw new Error('boom');
      },
    };
    expect((await check(input)).code).toBe('input_invalid');
  });

  it('answers a hostile proxy as the whole action with a verdict, not an exception', async () => {
    const trap = () => {
      throw new Error('trap');
    };
    const proxy = new Proxy(
      {},
      { get: trap, has: trap, ownKeys: trap, getPrototypeOf: trap, getOwnPropertyDescriptor: trap },
    );
    const v = await open().check(proxy as never);
    expect(CODES).toContain(v.code);
    expect(v.allowed).toBe(false);
    const v2 = await open().check({ role: 'open', tool: 'any', input: proxy, principal: 'p' });
    expect(v2.code).toBe('input_invalid');
  });

  it('answers actions that are not objects, or whose role and tool are not strings', async () => {
    const r = open();
    for (const action of [
      null,
      undefined,
      42,
      'open',
      [],
      { role: { toString: () => 'open' }, tool: 'any', input: {} },
    ]) {
      const v = await r.check(action as never);
      expect(v.allowed, JSON.stringify(action)).toBe(false);
    }
  });

  it('keeps a principal with separators, control characters or lone surrogates to its own budget', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const evil = ['\ud800', 'a\nb', 'a\u0000b', '{reader}:e:file.read', '%7B'];
    for (const principal of evil) {
      for (let i = 0; i < 5; i++) {
        expect(
          (await r.check({ role: 'reader', tool: 'read_file', input: { path: 'a' }, principal })).code,
        ).toBe('allowed');
      }
      expect(
        (await r.check({ role: 'reader', tool: 'read_file', input: { path: 'a' }, principal })).code,
      ).toBe('budget_exhausted');
    }
  });

  it('lets users raise or lower the limits', async () => {
    const contracts = [{ name: 'open', version: '1.0.0', description: 'x', tools: { any: { input: {} } } }];
    const strict = createRegistry({
      contracts,
      limits: { maxStringLength: 20, forbiddenKeys: ['password'] },
    });
    const call = (input: unknown) => strict.check({ role: 'open', tool: 'any', input });
    expect((await call({ s: 'x'.repeat(21) })).code).toBe('input_invalid');
    expect((await call({ s: 'x'.repeat(20) })).code).toBe('allowed');
    expect((await call({ password: 'x' })).code).toBe('input_invalid');
    expect((await call({ constructor: 'x' })).code).toBe('allowed');
  });

  it('fails closed when the memory store is full: budgets are never handed back by eviction', async () => {
    const r = createRegistry({
      contracts: [sampleContract()],
      store: createMemoryBudgetStore({ maxKeys: 4 }),
    });
    const call = (principal: string) =>
      r.check({ role: 'reader', tool: 'read_file', input: { path: 'a' }, principal });
    expect((await call('p1')).code).toBe('allowed');
    expect((await call('p2')).code).toBe('allowed');
    expect((await call('p3')).code).toBe('budget_store_unavailable');
    expect((await call('p1')).code).toBe('allowed');
  });
});

describe('properties (fast-check)', () => {
  const registry = open();
  const anything = fc.anything({
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withTypedArray: true,
    withSparseArray: true,
    withBoxedValues: true,
    maxDepth: 6,
  });

  it('random actions never throw, never reject, and answer a known code', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            role: fc.oneof(fc.constantFrom('open', 'reader', 'constructor', '__proto__'), anything),
            tool: fc.oneof(fc.constantFrom('any', 'read_file', 'wipe', 'toString'), anything),
            input: anything,
            principal: fc.oneof(fc.string(), anything),
            session: fc.oneof(fc.string(), anything),
            approval: fc.oneof(fc.record({ id: fc.string() }), anything),
          },
          { requiredKeys: [] },
        ),
        async (action) => {
          const v: Verdict = await registry.check(action as never);
          expect(CODES).toContain(v.code);
          expect(v.allowed).toBe(v.code === 'allowed');
        },
      ),
      { numRuns: 400 },
    );
    expectPrototypesClean();
  });

  it('JSON documents with prototype keys anywhere are refused and pollute nothing', async () => {
    const key = fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'prototype'),
      fc.string({ maxLength: 4 }),
    );
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 1 }),
        tie('object'),
        fc.array(tie('value'), { maxLength: 3 }),
      ),
      object: fc.dictionary(key, tie('value'), { maxKeys: 4 }),
    }));
    await fc.assert(
      fc.asyncProperty(json.object, async (doc) => {
        const text = JSON.stringify(doc);
        const parsed = JSON.parse(text);
        const v = await registry.check({ role: 'open', tool: 'any', input: parsed, principal: 'p' });
        const hasForbidden = /"(__proto__|constructor|prototype)":/.test(text);
        expect(v.code).toBe(hasForbidden ? 'input_invalid' : 'allowed');
        expectPrototypesClean();
      }),
      { numRuns: 400 },
    );
  });

  it('random outputs never throw from checkOutput', () => {
    fc.assert(
      fc.property(anything, (output) => {
        const v = registry.checkOutput({ role: 'open', tool: 'any', output });
        expect(['allowed', 'output_invalid']).toContain(v.code);
      }),
      { numRuns: 400 },
    );
  });
});
