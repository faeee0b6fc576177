import { describe, expect, it } from 'vitest';
import { createMemoryBudgetStore } from '../src/memory-store.js';
import { createRegistry } from '../src/registry.js';
import type { BudgetRequest, BudgetStore } from '../src/types.js';
import { sampleContract } from './helpers/contracts.js';

const req = (subject: string, cost = 1, limit = 3, windowMs = 1000): BudgetRequest => ({
  key: `b:${subject}`,
  bucket: 'b:',
  subject,
  cost,
  limit,
  windowMs,
});

describe('memory budget store', () => {
  it('counts per fixed window aligned to the epoch, and says how long until the window ends', () => {
    let now = 10_250;
    const store = createMemoryBudgetStore({ now: () => now });
    for (let i = 0; i < 3; i++) expect(store.consume([req('a')])).toEqual({ ok: true });
    expect(store.consume([req('a')])).toEqual({ ok: false, index: 0, used: 3, resetInMs: 750 });
    now = 11_000;
    expect(store.consume([req('a')])).toEqual({ ok: true });
  });

  it('spends every request or none', () => {
    const store = createMemoryBudgetStore({ now: () => 0 });
    expect(store.consume([req('x', 2, 10), req('y', 3, 3)])).toEqual({ ok: true });
    expect(store.consume([req('x', 2, 10), req('y', 1, 3)])).toMatchObject({ ok: false, index: 1, used: 3 });
    expect(store.consume([req('x', 8, 10)])).toEqual({ ok: true });
  });

  it('forgets counters whose window has ended when it needs the room, and only then', () => {
    let now = 0;
    const store = createMemoryBudgetStore({ maxKeys: 2, now: () => now });
    store.consume([req('a')]);
    store.consume([req('b')]);
    expect(() => store.consume([req('c')])).toThrow(/full/);
    now = 1_000;
    expect(store.consume([req('c')])).toEqual({ ok: true });
    expect(store.consume([req('d')])).toEqual({ ok: true });
  });

  it('peek answers like consume and spends nothing', () => {
    const store = createMemoryBudgetStore({ now: () => 0 });
    expect(store.peek([req('p', 3)])).toEqual({ ok: true });
    expect(store.peek([req('p', 4)])).toMatchObject({ ok: false, index: 0, used: 0 });
    store.consume([req('p', 2)]);
    expect(store.peek([req('p', 1)])).toEqual({ ok: true });
    expect(store.peek([req('p', 2)])).toMatchObject({ ok: false, used: 2 });
  });

  it('validates its options', () => {
    expect(() => createMemoryBudgetStore({ maxKeys: 0 })).toThrow(/maxKeys/);
  });
});

describe('custom budget stores', () => {
  it('receive flat keys where the subject cannot break out of its place', async () => {
    const seen: string[] = [];
    const store: BudgetStore = {
      consume(requests) {
        for (const r of requests) seen.push(r.key);
        return { ok: true };
      },
      peek: () => ({ ok: true }),
    };
    const r = createRegistry({ contracts: [sampleContract()], store });
    await r.check({ role: 'reader', tool: 'read_file', input: { path: 'a' }, principal: 'a:{b}%' });
    expect(seen).toEqual([
      '{reader}:e:file.read:principal:3600000:a%3A%7Bb%7D%25',
      '{reader}:e:bytes_read:principal:3600000:a%3A%7Bb%7D%25',
    ]);
  });
});
