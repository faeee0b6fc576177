import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isContractError } from '../src/errors.js';
import { createMemoryBudgetStore } from '../src/memory-store.js';
import { createRegistry } from '../src/registry.js';
import type { BudgetStore } from '../src/types.js';
import { sampleContract } from './helpers/contracts.js';

const both = (fn: BudgetStore['consume']): BudgetStore => ({ consume: fn, peek: fn });
const read = (input: unknown = { path: 'a.txt' }) => ({
  role: 'reader',
  tool: 'read_file',
  input,
  principal: 'alice',
});

describe('check: one test per verdict code', () => {
  it('allows a valid call and names the contract version that decided', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    expect(await r.check(read())).toEqual({
      allowed: true,
      code: 'allowed',
      role: 'reader',
      tool: 'read_file',
      version: '2.1.0',
    });
  });

  it('role_unknown for a role without a contract, with no version', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const v = await r.check({ ...read(), role: 'nobody' });
    expect(v).toMatchObject({ allowed: false, code: 'role_unknown', role: 'nobody' });
    expect(v.version).toBeUndefined();
  });

  it('tool_not_allowed for a tool the role does not list', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    expect(await r.check({ ...read(), tool: 'delete_file' })).toMatchObject({
      allowed: false,
      code: 'tool_not_allowed',
      version: '2.1.0',
    });
  });

  it('tool_not_allowed for inherited Object members used as tool names', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    for (const tool of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect((await r.check({ ...read(), tool })).code).toBe('tool_not_allowed');
    }
    expect((await r.check({ ...read(), role: 'constructor' })).code).toBe('role_unknown');
  });

  it('input_invalid with readable per-field errors, every failing field listed', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const v = await r.check(read({ max_bytes: 0, extra: true }));
    expect(v.code).toBe('input_invalid');
    expect(v.allowed).toBe(false);
    if (v.allowed) return;
    expect(v.errors).toEqual(
      expect.arrayContaining([
        { path: '/path', message: '/path is required' },
        { path: '/extra', message: '/extra is not allowed' },
        { path: '/max_bytes', message: '/max_bytes must be >= 1' },
      ]),
    );
  });

  it('input_invalid errors never echo input values', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const secret = 'sk-live-0123456789abcdef';
    const v = await r.check({ role: 'reader', tool: 'fetch_url', input: { url: secret }, principal: 'a' });
    expect(v.code).toBe('input_invalid');
    expect(JSON.stringify(v)).not.toContain(secret);
  });

  it('action_invalid when a budget per session has no session', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const v = await r.check({ role: 'reader', tool: 'chat', input: {}, principal: 'alice' });
    expect(v).toMatchObject({ code: 'action_invalid', errors: [{ path: '/session' }] });
  });

  it('action_invalid when a budget per principal has no principal', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const v = await r.check({ role: 'reader', tool: 'read_file', input: { path: 'a' } });
    expect(v).toMatchObject({ code: 'action_invalid', errors: [{ path: '/principal' }] });
  });

  it('action_invalid for a principal, session or approval id that is not a short string', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    for (const bad of [
      { principal: '' },
      { principal: 'x'.repeat(513) },
      { principal: 42 },
      { session: {} },
      { approval: { id: '' } },
      { approval: null },
      { approval: 'yes' },
    ]) {
      const v = await r.check({ ...read(), ...(bad as object) });
      expect(v.code, JSON.stringify(bad).slice(0, 40)).toBe('action_invalid');
    }
  });

  it('approval_required when the approval rule matches, with approvers and ttl from the contract', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const v = await r.check({ role: 'reader', tool: 'wipe', input: {}, principal: 'a' });
    expect(v).toMatchObject({
      code: 'approval_required',
      approval: { approvers: ['approvals:admin'], ttl_seconds: 60 },
    });
  });

  it('approval_required only when a "when" condition matches the input (default ttl 900)', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const get = await r.check({
      role: 'reader',
      tool: 'fetch_url',
      input: { url: 'https://x.test/' },
      principal: 'a',
    });
    expect(get.code).toBe('allowed');
    const post = await r.check({
      role: 'reader',
      tool: 'fetch_url',
      input: { url: 'https://x.test/', method: 'POST' },
      principal: 'a',
    });
    expect(post).toMatchObject({
      code: 'approval_required',
      approval: { approvers: ['approvals:net'], ttl_seconds: 900 },
    });
  });

  it('budget_exhausted with the effect, the limit, what was used and when it resets', async () => {
    let now = Date.UTC(2026, 0, 1, 10, 15, 0);
    const r = createRegistry({
      contracts: [sampleContract()],
      store: createMemoryBudgetStore({ now: () => now }),
    });
    for (let i = 0; i < 5; i++) expect((await r.check(read())).code).toBe('allowed');
    const v = await r.check(read());
    expect(v.allowed).toBe(false);
    if (v.allowed) return;
    expect(v.code).toBe('budget_exhausted');
    expect(v.budget).toMatchObject({
      effect: 'file.read',
      per: 'principal',
      limit: 5,
      window: '1h',
      cost: 1,
      used: 5,
      retryAfterSeconds: 45 * 60,
    });
    expect(Date.parse(v.budget!.resetsAt) - Date.now()).toBeGreaterThan(44 * 60_000);
    now = Date.UTC(2026, 0, 1, 11, 0, 0);
    expect((await r.check(read())).code).toBe('allowed');
  });

  it('budget_store_unavailable when the store throws, rejects or does not answer in time', async () => {
    const stores: BudgetStore[] = [
      both(() => {
        throw new Error('down');
      }),
      both(() => Promise.reject(new Error('down'))),
      both(() => new Promise(() => {})),
      both(() => Promise.resolve({ weird: true } as never)),
    ];
    for (const store of stores) {
      const r = createRegistry({ contracts: [sampleContract()], store, budgetTimeoutMs: 50 });
      const started = Date.now();
      expect((await r.check(read())).code).toBe('budget_store_unavailable');
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });
});

describe('check: approvals already verified by the caller', () => {
  it('answers allowed with the approval id, and spends the budget', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const action = {
      role: 'reader',
      tool: 'fetch_url',
      input: { url: 'https://x.test/', method: 'POST' },
      principal: 'a',
      approval: { id: 'appr-1' },
    };
    for (let i = 0; i < 3; i++)
      expect(await r.check(action)).toMatchObject({ code: 'allowed', approval: { id: 'appr-1' } });
    expect((await r.check(action)).code).toBe('budget_exhausted');
  });

  it('does not let an approval skip the input check or the allowlist', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const approval = { id: 'appr-2' };
    expect((await r.check({ ...read({}), approval })).code).toBe('input_invalid');
    expect((await r.check({ ...read(), tool: 'delete_file', approval })).code).toBe('tool_not_allowed');
  });

  it('does not mention the approval when the call needed none', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const v = await r.check({ ...read(), approval: { id: 'appr-3' } });
    expect(v).toEqual({
      allowed: true,
      code: 'allowed',
      role: 'reader',
      tool: 'read_file',
      version: '2.1.0',
    });
  });
});

describe('check: budgets', () => {
  it('a denied action spends nothing, whatever the reason', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    for (let i = 0; i < 20; i++) {
      await r.check(read({ path: 'a', bogus: 1 }));
      await r.check({ ...read(), tool: 'nope' });
      await r.check({
        role: 'reader',
        tool: 'fetch_url',
        input: { url: 'https://x.test/', method: 'POST' },
        principal: 'alice',
      });
    }
    for (let i = 0; i < 5; i++) expect((await r.check(read())).code).toBe('allowed');
    expect((await r.check(read())).code).toBe('budget_exhausted');
  });

  it('spends all budgets of a call or none: a call stopped by one budget spends nothing of the others', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    // bytes_read 1000 per hour: 900 + 200 does not fit, so file.read must not move either.
    expect((await r.check(read({ path: 'a', max_bytes: 900 }))).code).toBe('allowed');
    const v = await r.check(read({ path: 'a', max_bytes: 200 }));
    expect(v).toMatchObject({
      code: 'budget_exhausted',
      budget: { effect: 'bytes_read', cost: 200, used: 900 },
    });
    for (let i = 0; i < 4; i++)
      expect((await r.check(read({ path: 'a', max_bytes: 1 }))).code).toBe('allowed');
    expect(await r.check(read({ path: 'a', max_bytes: 1 }))).toMatchObject({
      budget: { effect: 'file.read' },
    });
  });

  it('reads a cost from the input, with the default when the field is absent', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    expect((await r.check(read({ path: 'a', max_bytes: 950 }))).code).toBe('allowed');
    expect(await r.check(read({ path: 'a' }))).toMatchObject({
      budget: { effect: 'bytes_read', cost: 100, used: 950 },
    });
    expect((await r.check(read({ path: 'a', max_bytes: 50 }))).code).toBe('allowed');
  });

  it('denies input_invalid when a counted field is absent and has no default (never counts it as 0)', async () => {
    const c = sampleContract();
    c.tools!.read_file!.effects = { 'file.read': 1, bytes_read: { input: 'max_bytes' } };
    const r = createRegistry({ contracts: [c] });
    expect(await r.check(read({ path: 'a' }))).toMatchObject({
      code: 'input_invalid',
      errors: [{ path: '/max_bytes' }],
    });
    expect((await r.check(read({ path: 'a', max_bytes: 10 }))).code).toBe('allowed');
  });

  it('counts per principal: one principal spending does not touch another', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    for (let i = 0; i < 5; i++) await r.check(read());
    expect((await r.check(read())).code).toBe('budget_exhausted');
    expect((await r.check({ ...read(), principal: 'bob' })).code).toBe('allowed');
  });

  it('counts calls of a tool per session', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const chat = (session: string) => ({ role: 'reader', tool: 'chat', input: {}, principal: 'a', session });
    expect((await r.check(chat('s1'))).code).toBe('allowed');
    expect((await r.check(chat('s1'))).code).toBe('allowed');
    expect(await r.check(chat('s1'))).toMatchObject({
      code: 'budget_exhausted',
      budget: { tool: 'chat', per: 'session' },
    });
    expect((await r.check(chat('s2'))).code).toBe('allowed');
  });

  it('keeps principals apart even when their ids look like key separators', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    for (let i = 0; i < 5; i++) await r.check({ ...read(), principal: 'a:b' });
    expect((await r.check({ ...read(), principal: 'a:b' })).code).toBe('budget_exhausted');
    for (const p of ['a%3Ab', 'a', 'a:b:', '{a:b}'])
      expect((await r.check({ ...read(), principal: p })).code).toBe('allowed');
  });

  it('keeps the budgets of two roles apart for the same principal', async () => {
    const other = { ...sampleContract(), name: 'reader2' };
    const r = createRegistry({ contracts: [sampleContract(), other] });
    for (let i = 0; i < 5; i++) await r.check(read());
    expect((await r.check(read())).code).toBe('budget_exhausted');
    expect((await r.check({ ...read(), role: 'reader2' })).code).toBe('allowed');
  });
});

describe('checkOutput', () => {
  it('validates the output against the tool output schema', () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    expect(r.checkOutput({ role: 'reader', tool: 'read_file', output: { content: 'x' } })).toEqual({
      allowed: true,
      code: 'allowed',
      role: 'reader',
      tool: 'read_file',
      version: '2.1.0',
      validated: true,
    });
    expect(r.checkOutput({ role: 'reader', tool: 'read_file', output: { content: 1 } })).toMatchObject({
      allowed: false,
      code: 'output_invalid',
      errors: [{ path: '/content', message: '/content must be string' }],
    });
  });

  it('passes outputs through, marked unvalidated, when the tool has no output schema', () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    expect(r.checkOutput({ role: 'reader', tool: 'chat', output: 'anything' })).toMatchObject({
      allowed: true,
      validated: false,
    });
  });

  it('answers role_unknown and tool_not_allowed like check, and never throws', () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    expect(r.checkOutput({ role: 'x', tool: 'read_file', output: {} }).code).toBe('role_unknown');
    expect(r.checkOutput({ role: 'reader', tool: 'x', output: {} }).code).toBe('tool_not_allowed');
    expect(r.checkOutput(null as never).code).toBe('role_unknown');
    const bad = {
      content: 'x',
      get boom() {
        throw new Error('boom');
      },
    };
    expect(r.checkOutput({ role: 'reader', tool: 'read_file', output: bad }).code).toBe('output_invalid');
  });
});

describe('createRegistry', () => {
  it('fails at load with the file, the JSON path and the reason', () => {
    const bad = sampleContract();
    (bad.tools!.read_file!.input as Record<string, unknown>).type = 'strng';
    try {
      createRegistry({ contracts: [bad] });
      expect.unreachable();
    } catch (err) {
      expect(isContractError(err)).toBe(true);
      if (!isContractError(err)) return;
      expect(err.code).toBe('contract_invalid');
      expect(err.issues[0]).toMatchObject({
        path: 'tools.read_file.input.type',
        message: 'invalid JSON Schema: must be equal to one of the allowed values',
      });
      expect(err.message).toContain('(object):tools.read_file.input.type: invalid JSON Schema');
    }
  });

  it('names the file when a contract file is bad', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'amas-reg-')), 'bad.json');
    writeFileSync(path, JSON.stringify({ ...sampleContract(), version: 'v1' }, null, 2));
    expect(() => createRegistry({ paths: [path] })).toThrow(`${path}:version: must be a semantic version`);
    rmSync(join(path, '..'), { recursive: true });
  });

  it('names the offending option when options are wrong', () => {
    const cases: [unknown, RegExp][] = [
      [{ contracts: 'x' }, /contracts/],
      [{ budgetTimeoutMs: 0 }, /budgetTimeoutMs/],
      [{ limits: { maxDepth: -1 } }, /maxDepth/],
      [{ store: {} }, /store/],
      [{ formats: 'fastest' }, /formats/],
      [{ unknown: 1 }, /unknown/],
    ];
    for (const [options, re] of cases) {
      expect(() => createRegistry(options as never)).toThrow(re);
      try {
        createRegistry(options as never);
      } catch (err) {
        expect(isContractError(err) && err.code).toBe('config_invalid');
      }
    }
  });

  it('lists roles, gives resolved contracts, and closes the store it owns', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    expect(r.roles()).toEqual(['reader']);
    expect(r.contract('reader')?.tools.wipe?.approval).toEqual({
      mode: 'always',
      approvers: ['approvals:admin'],
      ttl_seconds: 60,
    });
    expect(r.contract('constructor')).toBeUndefined();
    await r.close();
  });

  it('compiles nothing lazily: a schema with an unknown format fails at load', () => {
    const c = sampleContract();
    (c.tools!.chat!.input as Record<string, unknown>).properties = {
      t: { type: 'string', format: 'no-such-format' },
    };
    expect(() => createRegistry({ contracts: [c] })).toThrow(/tools\.chat\.input/);
  });
});

describe('immutability', () => {
  it('freezes resolved contracts and never freezes or keeps the objects it was given', async () => {
    const doc = sampleContract();
    const r = createRegistry({ contracts: [doc] });
    expect(Object.isFrozen(doc.tools)).toBe(false);
    (doc.tools!.read_file!.input as Record<string, unknown>).required = [];
    expect((await r.check({ role: 'reader', tool: 'read_file', input: {}, principal: 'a' })).code).toBe(
      'input_invalid',
    );
    const c = r.contract('reader')!;
    expect(Object.isFrozen(c.tools.wipe!.approval)).toBe(true);
    const v = await r.check({ role: 'reader', tool: 'wipe', input: {}, principal: 'a' });
    expect(() =>
      (v as unknown as { approval: { approvers: string[] } }).approval.approvers.push('x'),
    ).toThrow();
  });
});

describe('check without spending ({ spend: false }), for a gateway that asks a policy engine first', () => {
  it('answers what a spending check would, and spends nothing', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    for (let i = 0; i < 20; i++) expect((await r.check(read(), { spend: false })).code).toBe('allowed');
    for (let i = 0; i < 5; i++) expect((await r.check(read())).code).toBe('allowed');
    expect(await r.check(read(), { spend: false })).toMatchObject({
      code: 'budget_exhausted',
      budget: { used: 5 },
    });
    expect((await r.check({ ...read(), tool: 'nope' }, { spend: false })).code).toBe('tool_not_allowed');
    expect((await r.check(read({}), { spend: false })).code).toBe('input_invalid');
  });

  it('the spending check after it can still lose the race for the last unit', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    for (let i = 0; i < 4; i++) await r.check(read());
    expect((await r.check(read(), { spend: false })).code).toBe('allowed');
    expect((await r.check({ ...read(), input: { path: 'b' } })).code).toBe('allowed'); // another caller
    expect((await r.check(read())).code).toBe('budget_exhausted');
  });
});

describe('approval_required and budgets', () => {
  it('answers budget_exhausted rather than asking a human to approve a call that could not run', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const post = {
      role: 'reader',
      tool: 'fetch_url',
      input: { url: 'https://x.test/', method: 'POST' },
      principal: 'a',
    };
    const get = { ...post, input: { url: 'https://x.test/' } };
    expect((await r.check(post)).code).toBe('approval_required');
    for (let i = 0; i < 3; i++) expect((await r.check(get)).code).toBe('allowed');
    expect(await r.check(post)).toMatchObject({ code: 'budget_exhausted', budget: { effect: 'network' } });
  });

  it('asking for an approval spends nothing', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const post = {
      role: 'reader',
      tool: 'fetch_url',
      input: { url: 'https://x.test/', method: 'POST' },
      principal: 'a',
    };
    for (let i = 0; i < 10; i++) expect((await r.check(post)).code).toBe('approval_required');
    for (let i = 0; i < 3; i++)
      expect((await r.check({ ...post, approval: { id: `ap-${i}` } })).code).toBe('allowed');
    expect((await r.check({ ...post, approval: { id: 'ap-x' } })).code).toBe('budget_exhausted');
  });
});

describe('verdictError', () => {
  it('maps denials to statuses and Retry-After headers', async () => {
    const { verdictError } = await import('../src/verdict-error.js');
    const r = createRegistry({
      contracts: [sampleContract()],
      store: both(() => Promise.reject(new Error('x'))),
    });
    const down = await r.check(read());
    if (down.allowed) throw new Error('expected a denial');
    expect(verdictError(down)).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
    const tool = await r.check({ ...read(), tool: 'x' });
    if (tool.allowed) throw new Error('expected a denial');
    expect(verdictError(tool)).toMatchObject({ status: 403, code: 'tool_not_allowed', headers: {} });
  });
});
