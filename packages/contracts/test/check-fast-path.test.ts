import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryBudgetStore } from '../src/memory-store.js';
import { createRegistry } from '../src/registry.js';
import type { BudgetStore, ContractDocument, Verdict } from '../src/types.js';
import { sampleContract } from './helpers/contracts.js';

// Budgets per principal and per session, a cost read from the input that may be 0, a cost fixed at 0,
// and windows of one second and one minute, so that random runs reach every branch of a store.
const counted: ContractDocument = {
  name: 'counted',
  version: '1.0.0',
  description: 'Budgets of every kind.',
  tools: {
    spend: {
      input: {
        type: 'object',
        additionalProperties: false,
        properties: { n: { type: 'integer', minimum: 0, maximum: 4 } },
      },
      effects: { units: { input: 'n', default: 1 }, free: 0 },
    },
    talk: { input: { type: 'object' }, effects: { units: 1 } },
  },
  budgets: [
    { effect: 'units', limit: 6, window: 1, per: 'principal' },
    { effect: 'free', limit: 1, window: '1m', per: 'principal' },
    { tool: 'spend', limit: 4, window: '1m', per: 'session' },
    { tool: 'talk', limit: 3, window: 1, per: 'principal' },
  ],
};

/** A store the registry cannot recognise: every call goes through `consume` and `peek` with requests. */
const opaque = (inner: BudgetStore): BudgetStore => ({
  consume: (requests) => inner.consume(requests),
  peek: (requests) => inner.peek(requests),
});

/** `resetsAt` is read from the wall clock at the time of each answer; everything else must be equal. */
const comparable = (v: Verdict) =>
  !v.allowed && v.budget ? { ...v, budget: { ...v.budget, resetsAt: 'x' } } : v;

describe('the memory store called directly by the registry', () => {
  it('answers every check exactly as the same store behind the generic BudgetStore interface', async () => {
    const step = fc.record({
      tool: fc.constantFrom('spend', 'talk', 'read_file', 'chat'),
      principal: fc.constantFrom('p1', 'p2', 'p:3', undefined),
      session: fc.constantFrom('s1', 's2', undefined),
      n: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
      spend: fc.boolean(),
      advanceMs: fc.constantFrom(0, 0, 0, 250, 1_000, 61_000),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 80 }),
        fc.integer({ min: 2, max: 12 }),
        async (steps, maxKeys) => {
          let now = Date.UTC(2026, 0, 1);
          const clock = () => now;
          const contracts = [counted, sampleContract()];
          const direct = createRegistry({
            contracts,
            store: createMemoryBudgetStore({ now: clock, maxKeys }),
          });
          const generic = createRegistry({
            contracts,
            store: opaque(createMemoryBudgetStore({ now: clock, maxKeys })),
          });
          for (const s of steps) {
            now += s.advanceMs;
            const role = s.tool === 'spend' || s.tool === 'talk' ? 'counted' : 'reader';
            const input =
              s.tool === 'read_file'
                ? { path: 'a', max_bytes: (s.n ?? 0) * 100 + 1 }
                : s.n === undefined
                  ? {}
                  : { n: s.n };
            const action = { role, tool: s.tool, input, principal: s.principal, session: s.session };
            const a = await direct.check(action, { spend: s.spend });
            const b = await generic.check(action, { spend: s.spend });
            expect(comparable(a)).toEqual(comparable(b));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('keeps counting for the registry after the store is closed, from zero', async () => {
    const store = createMemoryBudgetStore();
    const r = createRegistry({ contracts: [sampleContract()], store });
    const read = () => r.check({ role: 'reader', tool: 'read_file', input: { path: 'a' }, principal: 'p' });
    for (let i = 0; i < 5; i++) expect((await read()).code).toBe('allowed');
    expect((await read()).code).toBe('budget_exhausted');
    await store.close?.();
    for (let i = 0; i < 5; i++) expect((await read()).code).toBe('allowed');
    expect((await read()).code).toBe('budget_exhausted');
  });

  it('shares its counters with other registries and with callers of consume()', async () => {
    const store = createMemoryBudgetStore();
    const one = createRegistry({ contracts: [sampleContract()], store });
    const two = createRegistry({ contracts: [sampleContract()], store });
    const read = { role: 'reader', tool: 'read_file', input: { path: 'a' }, principal: 'p' };
    for (let i = 0; i < 3; i++) expect((await one.check(read)).code).toBe('allowed');
    const bucket = '{reader}:e:file.read:principal:3600000:';
    expect(
      store.peek([{ key: `${bucket}p`, bucket, subject: 'p', cost: 2, limit: 5, windowMs: 3_600_000 }]),
    ).toEqual({
      ok: true,
    });
    store.consume([{ key: `${bucket}p`, bucket, subject: 'p', cost: 1, limit: 5, windowMs: 3_600_000 }]);
    expect((await two.check(read)).code).toBe('allowed');
    expect(await two.check(read)).toMatchObject({ code: 'budget_exhausted', budget: { used: 5 } });
  });
});

describe('reads of the action and its input', () => {
  it('reads the principal once: the id that was checked is the id that is counted', async () => {
    let reads = 0;
    const action = {
      role: 'reader',
      tool: 'read_file',
      input: { path: 'a' },
      get principal() {
        reads++;
        return reads === 1 ? 'p' : undefined;
      },
    };
    expect((await createRegistry({ contracts: [sampleContract()] }).check(action)).code).toBe('allowed');
    expect(reads).toBe(1);
  });

  it('reads the approval id once: the id that was checked is the id the verdict carries', async () => {
    let reads = 0;
    const approval = {
      get id() {
        reads++;
        return reads === 1 ? 'appr-1' : { evil: true };
      },
    };
    const r = createRegistry({ contracts: [sampleContract()] });
    const v = await r.check({ role: 'reader', tool: 'wipe', input: {}, principal: 'p', approval } as never);
    expect(v).toMatchObject({ code: 'allowed', approval: { id: 'appr-1' } });
    expect(reads).toBe(1);
  });

  it('counts every value of the input, even when a getter inside it runs another check', async () => {
    const r = createRegistry({
      contracts: [{ name: 'open', version: '1.0.0', description: 'x', tools: { any: { input: {} } } }],
      limits: { maxNodes: 10 },
    });
    const small = { role: 'open', tool: 'any', input: { a: 1 } };
    const input = {
      a: [1, 2, 3, 4],
      get b() {
        void r.check(small); // walks its own input synchronously, in the middle of this walk
        return 1;
      },
      c: [1, 2, 3, 4],
    };
    // 1 + (1 + 4) + 1 + (1 + 4) = 12 values, over the limit of 10
    expect(await r.check({ ...small, input })).toMatchObject({
      code: 'input_invalid',
      message: expect.stringMatching(/more than 10 values/),
    });
    expect((await r.check(small)).code).toBe('allowed');
  });

  it('refuses forbidden keys of the same length as others, and long ones', async () => {
    const long = `k${'x'.repeat(80)}`;
    const r = createRegistry({
      contracts: [{ name: 'open', version: '1.0.0', description: 'x', tools: { any: { input: {} } } }],
      limits: { forbiddenKeys: ['aaaa', 'bbbb', 'cccc', long, ''] },
    });
    const call = (input: unknown) => r.check({ role: 'open', tool: 'any', input });
    for (const key of ['aaaa', 'bbbb', 'cccc', long, '']) {
      expect(await call({ ok: 1, nested: [{ [key]: 1 }] })).toMatchObject({
        code: 'input_invalid',
        errors: [{ path: `/nested/0/${key}` }],
      });
    }
    for (const key of ['aaab', 'dddd', `${long}y`, long.slice(1), 'a']) {
      expect((await call({ [key]: 1 })).code).toBe('allowed');
    }
  });
});

describe('the promise check() answers', () => {
  it('cannot be changed by one caller for another: allowed answers may be shared, and are frozen', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const action = { role: 'reader', tool: 'chat', input: {}, session: 's' };
    const first = r.check(action);
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => Object.defineProperty(first, 'then', { value: () => 'hijacked' })).toThrow(TypeError);
    const second = r.check(action);
    expect(await second.then((v) => v.code)).toBe('allowed');
    expect((await r.check(action)).code).toBe('budget_exhausted');
  });
});
