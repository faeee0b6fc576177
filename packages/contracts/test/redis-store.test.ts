import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBudgetStore } from '../src/redis-store.js';
import { createRegistry } from '../src/registry.js';
import { sampleContract } from './helpers/contracts.js';
import { freePort, type RedisServer, startRedis } from './helpers/redis.js';

let redis: RedisServer;
const clients: Redis[] = [];
const connect = async (port = redis.port) => {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  clients.push(c);
  await c.connect().catch(() => {});
  return c;
};
const read = (principal = 'alice') => ({
  role: 'reader',
  tool: 'read_file',
  input: { path: 'a' },
  principal,
});

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

describe('Redis budget store (real redis-server)', () => {
  it('two processes racing for a budget of 100 with 50 concurrent callers each: exactly 100 allowed', async () => {
    const dist = join(import.meta.dirname, '..', 'dist', 'index.js');
    const src = join(import.meta.dirname, '..', 'src');
    expect(
      existsSync(dist),
      'the race runs the built package: run "pnpm --filter @amas/contracts build"',
    ).toBe(true);
    const newest = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs));
    expect(statSync(dist).mtimeMs, 'dist is older than src: rebuild before testing').toBeGreaterThanOrEqual(
      newest,
    );

    const worker = join(import.meta.dirname, 'fixtures', 'race-worker.mjs');
    const procs = [0, 1].map(() =>
      spawn(process.execPath, [worker, String(redis.port), '50', '3'], { stdio: 'pipe' }),
    );
    const lines = procs.map(
      (p) =>
        new Promise<string[]>((resolve, reject) => {
          let out = '';
          let err = '';
          p.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          p.stderr.on('data', (d: Buffer) => {
            err += d.toString();
          });
          p.on('exit', (code) =>
            code === 0 ? resolve(out.trim().split('\n')) : reject(new Error(`worker ${code}: ${err}`)),
          );
        }),
    );
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            p.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
          }),
      ),
    );
    for (const p of procs) p.stdin.end('go\n');
    const results = (await Promise.all(lines)).map((l) => JSON.parse(l.at(-1)!) as Record<string, number>);
    const allowed = results.reduce((n, r) => n + (r.allowed ?? 0), 0);
    const exhausted = results.reduce((n, r) => n + (r.budget_exhausted ?? 0), 0);
    expect(allowed).toBe(100);
    expect(exhausted).toBe(200);
    // Both budgets of each allowed call were spent together, never one without the other.
    const client = await connect();
    const keys = (await client.keys('race:*')).sort();
    expect(keys).toHaveLength(2);
    const counts = await Promise.all(keys.map((k) => client.hget(k, 'n')));
    expect(counts.map(Number).sort((a, b) => a - b)).toEqual([100, 700]);
  });

  it('keeps the spent budget across a restart of the app, in keys that expire with their window', async () => {
    const first = await connect();
    const app1 = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client: first }),
    });
    for (let i = 0; i < 3; i++) expect((await app1.check(read('restart'))).code).toBe('allowed');
    first.disconnect();

    const second = await connect();
    const app2 = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client: second }),
    });
    expect((await app2.check(read('restart'))).code).toBe('allowed');
    expect((await app2.check(read('restart'))).code).toBe('allowed');
    const v = await app2.check(read('restart'));
    expect(v).toMatchObject({ code: 'budget_exhausted', budget: { effect: 'file.read', used: 5, limit: 5 } });
    if (!v.allowed) expect(v.budget!.retryAfterSeconds).toBeLessThanOrEqual(3600);

    const keys = await second.keys('amas:contracts:*restart');
    expect(keys.sort()).toEqual([
      'amas:contracts:{reader}:e:bytes_read:principal:3600000:restart',
      'amas:contracts:{reader}:e:file.read:principal:3600000:restart',
    ]);
    for (const k of keys) {
      const ttl = await second.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    }
  });

  it('a denied action spends nothing in Redis', async () => {
    const client = await connect();
    const app = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client, prefix: 'deny:' }),
    });
    await app.check({ ...read('d'), input: { path: 'a', max_bytes: 5000 } });
    await app.check({ role: 'reader', tool: 'wipe', input: {}, principal: 'd' });
    expect(await client.keys('deny:*')).toEqual([]);
  });

  it('a check without spending reads the counters and writes nothing', async () => {
    const client = await connect();
    const app = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client, prefix: 'peek:' }),
    });
    expect((await app.check(read('k'), { spend: false })).code).toBe('allowed');
    expect(await client.keys('peek:*')).toEqual([]);
    for (let i = 0; i < 5; i++) await app.check(read('k'));
    expect(await app.check(read('k'), { spend: false })).toMatchObject({
      code: 'budget_exhausted',
      budget: { used: 5 },
    });
    expect(await client.hget('peek:{reader}:e:file.read:principal:3600000:k', 'n')).toBe('5');
  });

  it('loads the script again after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const client = await connect();
    const app = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client, prefix: 'flush:' }),
    });
    expect((await app.check(read('f'))).code).toBe('allowed');
    await client.script('FLUSH');
    expect((await app.check(read('f'))).code).toBe('allowed');
    expect(await client.hget('flush:{reader}:e:file.read:principal:3600000:f', 'n')).toBe('2');
  });

  it('Redis down: budget_store_unavailable within the bounded wait', async () => {
    const nothing = await freePort();
    const client = await connect(nothing);
    const app = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client }),
      budgetTimeoutMs: 300,
    });
    const started = Date.now();
    expect((await app.check(read())).code).toBe('budget_store_unavailable');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('Redis hanging (SIGSTOP): budget_store_unavailable within the bounded wait, then recovers', async () => {
    const client = await connect();
    const app = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client, prefix: 'hang:' }),
      budgetTimeoutMs: 300,
    });
    expect((await app.check(read('h'))).code).toBe('allowed');
    redis.pause();
    try {
      const started = Date.now();
      expect((await app.check(read('h'))).code).toBe('budget_store_unavailable');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      redis.resume();
    }
    await client.ping();
    expect((await app.check(read('h2'))).code).toBe('allowed');
  });

  it('fails closed on a reply of the wrong shape', async () => {
    const fake = { evalsha: async () => 'OK', eval: async () => 'OK' };
    const app = createRegistry({
      contracts: [sampleContract()],
      store: createRedisBudgetStore({ client: fake }),
    });
    expect((await app.check(read())).code).toBe('budget_store_unavailable');
  });

  it('refuses a client that is not an ioredis client, naming the option', () => {
    expect(() => createRedisBudgetStore({ client: {} as never })).toThrow(/client/);
  });
});
