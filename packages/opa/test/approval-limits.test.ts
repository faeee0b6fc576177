import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryApprovalStore } from '../src/approval-store-memory.js';
import { createRedisApprovalStore } from '../src/approval-store-redis.js';
import { type ApprovalsOptions, createApprovals } from '../src/approvals.js';
import { createEnforcer, type Enforcer } from '../src/enforcer.js';
import { isOpaError, type OpaErrorCode } from '../src/errors.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import type { ApprovalAuditEvent, ApprovalStore, Principal } from '../src/types.js';
import { type Framework, startApp, type TestApp } from './apps.js';
import { roleData, useRedis } from './helpers.js';

// An agent that can reach an escalating tool must not be able to fill the approval store: pending
// requests are limited per principal (atomically, across replicas), re-escalating the same action is
// idempotent, and the store as a whole is bounded without refusing work because of finished records.

const PATH = 'amas/tool_access/decision';
const action = (n: number | string) => ({
  agent_role: 'security_auditor',
  tool_name: 'run_pentest',
  input: { target: `host-${n}` },
});
const agent: Principal = { sub: 'agent-42', scopes: ['agents:invoke'] };
const approver: Principal = { sub: 'alice', scopes: ['approvals:security'] };
const requirement = { approvers: ['approvals:security'], ttlSeconds: 60 };

const code = (c: OpaErrorCode) => (err: unknown) => isOpaError(err) && err.code === c;
const codeOf = (r: PromiseSettledResult<unknown>) =>
  r.status === 'rejected' ? (isOpaError(r.reason) ? r.reason.code : 'other') : 'ok';

const redis = useRedis('lim');
const newRedis = () => redis.client();
const uniquePrefix = redis.prefix;

type StoreFactory = (now: () => number, maxRecords?: number) => ApprovalStore;
const stores: [string, StoreFactory][] = [
  ['memory store', (now, maxRecords) => createMemoryApprovalStore({ now, maxRecords })],
  [
    'redis store',
    (_now, maxRecords) =>
      createRedisApprovalStore({
        redis: newRedis(),
        prefix: uniquePrefix(),
        ...(maxRecords ? { maxRecords } : {}),
      }),
  ],
];

describe.each(stores)('pending approval requests per principal, with the %s', (_name, makeStore) => {
  const setup = (options: ApprovalsOptions = {}, maxRecords?: number) => {
    const clock = { t: 1_700_000_000_000 };
    const events: ApprovalAuditEvent[] = [];
    const approvals = createApprovals({
      store: makeStore(() => clock.t, maxRecords),
      now: () => clock.t,
      onAudit: (e) => events.push(e),
      ...options,
    });
    const request = (n: number | string, principal: Principal = agent) =>
      approvals.request({ path: PATH, input: action(n), principal, approval: requirement });
    return { clock, events, approvals, request };
  };

  it('re-escalating the same action while it is pending returns the same request (idempotent)', async () => {
    const { approvals, events, request, clock } = setup();
    const first = await request(1);
    clock.t += 5_000;
    const again = await request(1);
    expect(again.id).toBe(first.id);
    expect(again).toMatchObject({
      status: 'pending',
      createdAt: first.createdAt,
      expiresAt: first.expiresAt,
    });
    expect(events.filter((e) => e.action === 'requested')).toHaveLength(1);
    expect((await approvals.listPending(approver)).map((r) => r.id)).toEqual([first.id]);
  });

  it('another action, another principal, or other approvers make another request', async () => {
    const { approvals, request } = setup();
    const first = await request(1);
    expect((await request(2)).id).not.toBe(first.id);
    expect((await request(1, { sub: 'agent-7' })).id).not.toBe(first.id);
    const stricter = await approvals.request({
      path: PATH,
      input: action(1),
      principal: agent,
      approval: { approvers: ['approvals:admin'], ttlSeconds: 60 },
    });
    expect(stricter.id).not.toBe(first.id);
  });

  it('once the pending request is decided or expired, the same action makes a new request', async () => {
    const { approvals, request, clock } = setup();
    const a = await request(1);
    await approvals.deny(a.id, approver, 'no');
    const b = await request(1);
    expect(b.id).not.toBe(a.id);
    await approvals.approve(b.id, approver);
    const c = await request(1);
    expect(c.id).not.toBe(b.id);
    clock.t += 3_600_000;
    const d = await request(1);
    expect(d.id).not.toBe(c.id);
    expect(d.status).toBe('pending');
  });

  it('attack: concurrent identical escalations make exactly one request', async () => {
    const { request, events } = setup();
    const all = await Promise.all(Array.from({ length: 25 }, () => request(1)));
    expect(new Set(all.map((r) => r.id)).size).toBe(1);
    expect(events.filter((e) => e.action === 'requested')).toHaveLength(1);
  });

  it('attack: a flood of distinct actions stops at the limit with approval_limit and a Retry-After', async () => {
    const { request, events, clock } = setup({ maxPendingPerPrincipal: 3 });
    for (let i = 0; i < 3; i++) await request(i);
    clock.t += 600_000;
    const refused = await request(99).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toSatisfy(code('approval_limit'));
    expect(isOpaError(refused) && refused.status).toBe(429);
    // The oldest pending request expires 3,000 s from now (1 h after it was made, 10 min ago).
    expect(isOpaError(refused) && refused.headers['retry-after']).toBe('3000');
    expect(events.at(-1)).toMatchObject({
      id: '',
      action: 'refused',
      by: 'agent-42',
      code: 'approval_limit',
    });
  });

  it('at the limit, re-escalating a pending action still answers it, and the pending ones stay usable', async () => {
    const { approvals, request } = setup({ maxPendingPerPrincipal: 2 });
    const a = await request(1);
    await request(2);
    await expect(request(3)).rejects.toSatisfy(code('approval_limit'));
    expect((await request(1)).id).toBe(a.id);
    await approvals.approve(a.id, approver, 'ok');
    const used = await approvals.consume(a.id, { path: PATH, input: action(1), principal: agent });
    expect(used.status).toBe('used');
    // The decision freed a slot.
    expect((await request(3)).status).toBe('pending');
    await expect(request(4)).rejects.toSatisfy(code('approval_limit'));
  });

  it('the limit is per principal: a flooding agent does not block another one', async () => {
    const { request } = setup({ maxPendingPerPrincipal: 2 });
    await request(1);
    await request(2);
    await expect(request(3)).rejects.toSatisfy(code('approval_limit'));
    expect((await request(3, { sub: 'agent-7' })).status).toBe('pending');
  });

  it('expired pending requests no longer count', async () => {
    const { request, clock } = setup({ maxPendingPerPrincipal: 2, pendingTtlSeconds: 60 });
    await request(1);
    await request(2);
    await expect(request(3)).rejects.toSatisfy(code('approval_limit'));
    clock.t += 60_000;
    expect((await request(3)).status).toBe('pending');
    expect((await request(4)).status).toBe('pending');
  });

  it('the default limit is 20 pending requests per principal', async () => {
    const { request } = setup();
    for (let i = 0; i < 20; i++) await request(i);
    await expect(request(20)).rejects.toSatisfy(code('approval_limit'));
  });

  it('race: 30 distinct escalations at once against a limit of 5: exactly 5 requests', async () => {
    const { request, approvals } = setup({ maxPendingPerPrincipal: 5 });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => request(i)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(results.map(codeOf).filter((c) => c !== 'ok')).toEqual(Array(25).fill('approval_limit'));
    expect(await approvals.listPending(approver)).toHaveLength(5);
  });

  it('the store as a whole is bounded: finished records make room, live ones are never dropped', async () => {
    const { approvals, request } = setup({}, 3);
    const a = await request(1, { sub: 'a' });
    const b = await request(1, { sub: 'b' });
    const c = await request(1, { sub: 'c' });
    const full = await request(1, { sub: 'd' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(full).toSatisfy(code('approval_unavailable'));
    expect(isOpaError(full) && Number(full.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Every live request is still there and usable.
    for (const r of [a, b, c]) expect((await approvals.get(r.id))?.status).toBe('pending');
    await approvals.deny(b.id, approver);
    const d = await request(1, { sub: 'd' });
    expect(d.status).toBe('pending');
    expect(await approvals.get(b.id)).toBeUndefined();
    await approvals.approve(a.id, approver);
    expect(
      (await approvals.consume(a.id, { path: PATH, input: action(1), principal: { sub: 'a' } })).status,
    ).toBe('used');
  });
});

describe('approvals: the limit option and stores that do not honour the interface', () => {
  it('maxPendingPerPrincipal must be a positive integer, named in the error', () => {
    for (const bad of [0, -1, 1.5, '20', Number.NaN]) {
      expect(() => createApprovals({ maxPendingPerPrincipal: bad as number })).toThrow(
        /option "maxPendingPerPrincipal"/,
      );
    }
    expect(() =>
      createEnforcer({ url: 'http://127.0.0.1:1', approvals: { maxPendingPerPrincipal: 0 } }),
    ).toThrow(/approvals\.maxPendingPerPrincipal/);
  });

  it('a store whose create() answers nothing (an older interface) refuses escalations: 503, never unbounded', async () => {
    const legacy = createMemoryApprovalStore();
    const store: ApprovalStore = { ...legacy, create: async () => undefined as never };
    const approvals = createApprovals({ store });
    await expect(
      approvals.request({ path: PATH, input: action(1), principal: agent, approval: requirement }),
    ).rejects.toSatisfy(code('approval_unavailable'));
  });

  it('attack: a store that answers another principal\'s request as "existing" is a 503, never that request', async () => {
    const inner = createMemoryApprovalStore();
    const approvals = createApprovals({ store: inner });
    const victim = await approvals.request({
      path: PATH,
      input: action(1),
      principal: { sub: 'victim' },
      approval: requirement,
    });
    const buggy: ApprovalStore = {
      ...inner,
      create: async () => ({ ok: true, record: victim, created: false }),
    };
    const other = createApprovals({ store: buggy });
    await expect(
      other.request({ path: PATH, input: action(1), principal: agent, approval: requirement }),
    ).rejects.toSatisfy(code('approval_unavailable'));
  });

  it.each(stores)(
    'the %s refuses to create without a valid limit (never unbounded)',
    async (_name, makeStore) => {
      const store = makeStore(Date.now);
      const approvals = createApprovals({ store });
      const record = await approvals.request({
        path: PATH,
        input: action(1),
        principal: agent,
        approval: requirement,
      });
      for (const limits of [
        undefined,
        {},
        { maxPendingPerPrincipal: 0 },
        { maxPendingPerPrincipal: Number.NaN },
      ]) {
        await expect(
          store.create({ ...record, id: crypto.randomUUID() }, limits as never),
          JSON.stringify(limits),
        ).rejects.toThrow(/maxPendingPerPrincipal/);
      }
    },
  );

  it('the Redis store refuses a prefix with a hash tag of its own and a bad maxRecords', () => {
    const redis = { eval: () => undefined, hgetall: () => undefined } as unknown as Redis;
    expect(() => createRedisApprovalStore({ redis, prefix: 'a{b}:' })).toThrow(/prefix/);
    expect(() => createRedisApprovalStore({ redis, maxRecords: 0 })).toThrow(/maxRecords/);
  });
});

describe('redis: two replicas share the limit and the idempotency', () => {
  const replicas = (options: ApprovalsOptions = {}) => {
    const prefix = uniquePrefix();
    const make = () =>
      createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix }), ...options });
    return { prefix, a: make(), b: make() };
  };

  it('race: two replicas escalating 20 distinct actions at once against a limit of 5: exactly 5 requests', async () => {
    const { a, b, prefix } = replicas({ maxPendingPerPrincipal: 5 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).request({
          path: PATH,
          input: action(i),
          principal: agent,
          approval: requirement,
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(results.map(codeOf).filter((c) => c !== 'ok')).toEqual(Array(15).fill('approval_limit'));
    expect(await a.listPending(approver)).toHaveLength(5);
    const redis = newRedis();
    expect(await redis.zcard(`${prefix}{approvals}:pending`)).toBe(5);
  });

  it('race: both replicas escalating the same action 10 times each make one request', async () => {
    const { a, b } = replicas();
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).request({
          path: PATH,
          input: action(1),
          principal: agent,
          approval: requirement,
        }),
      ),
    );
    expect(new Set(all.map((r) => r.id)).size).toBe(1);
    expect((await b.get(all[0]?.id as string))?.audit.map((e) => e.action)).toEqual(['requested']);
  });

  it('a decision on one replica frees the slot for the other', async () => {
    const { a, b } = replicas({ maxPendingPerPrincipal: 1 });
    const first = await a.request({ path: PATH, input: action(1), principal: agent, approval: requirement });
    await expect(
      b.request({ path: PATH, input: action(2), principal: agent, approval: requirement }),
    ).rejects.toSatisfy(code('approval_limit'));
    await b.deny(first.id, approver);
    const second = await a.request({ path: PATH, input: action(2), principal: agent, approval: requirement });
    expect(second.status).toBe('pending');
  });

  it('every key carries the one hash tag, so each script stays in one Redis Cluster slot', async () => {
    const { a, prefix } = replicas();
    const rec = await a.request({ path: PATH, input: action(1), principal: agent, approval: requirement });
    await a.approve(rec.id, approver);
    await a.consume(rec.id, { path: PATH, input: action(1), principal: agent });
    const keys = await newRedis().keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(3);
    for (const key of keys) expect(key.startsWith(`${prefix}{approvals}:`), key).toBe(true);
  });
});

const frameworks: Framework[] = ['express5', 'express4', 'koa3', 'koa2'];

describe.each(frameworks)('%s: an agent flooding escalations', (framework) => {
  let opa: OpaTestServer;
  let enforcer: Enforcer;
  let app: TestApp;

  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
    enforcer = createEnforcer({
      url: opa.url,
      breaker: false,
      timeoutMs: 1_000,
      approvals: { maxPendingPerPrincipal: 3 },
    });
    app = await startApp(framework, enforcer);
  });
  afterAll(async () => {
    await app.close();
    enforcer.close();
    await opa.close();
  });

  const scan = async (
    target: string,
    auth = 'Bearer flooder|agents:invoke',
    extra: Record<string, string> = {},
  ) => {
    const r = await fetch(`${app.url}/tools/security_auditor/run_scan`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json', ...extra },
      body: JSON.stringify({ target, mode: 'active' }),
    });
    return { status: r.status, headers: r.headers, body: (await r.json()) as Record<string, unknown> };
  };

  it('gets 202 up to the limit, then 429 approval_limit with Retry-After; the tool never runs', async () => {
    const ids: string[] = [];
    for (const target of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      const r = await scan(target);
      expect(r.status).toBe(202);
      ids.push((r.body.approval as { id: string }).id);
    }
    const limited = await scan('10.0.0.4');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.body).toMatchObject({ error: 'approval_limit', reasons: ['approval_limit'] });
    expect(limited.body.ran).toBeUndefined();

    // Idempotent: the same call again answers the pending request, not a 429.
    const again = await scan('10.0.0.1');
    expect(again.status).toBe(202);
    expect((again.body.approval as { id: string }).id).toBe(ids[0]);

    // Another agent is not affected.
    expect((await scan('10.0.0.4', 'Bearer other|agents:invoke')).status).toBe(202);

    // The pending requests stay usable: approve one, retry it, and the freed slot takes a new request.
    const approve = await fetch(`${app.url}/approvals/${ids[0]}/approve`, {
      method: 'POST',
      headers: { authorization: 'Bearer alice|approvals:security', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(approve.status).toBe(200);
    const run = await scan('10.0.0.1', undefined, { 'amas-approval-id': ids[0] as string });
    expect(run).toMatchObject({ status: 200, body: { ran: true, approval: ids[0] } });
    expect((await scan('10.0.0.4')).status).toBe(202);
    expect((await scan('10.0.0.5')).status).toBe(429);
  });
});
