import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryApprovalStore } from '../src/approval-store-memory.js';
import { createRedisApprovalStore } from '../src/approval-store-redis.js';
import { createApprovals } from '../src/approvals.js';
import { createEnforcer } from '../src/enforcer.js';
import { isOpaError, type OpaErrorCode } from '../src/errors.js';
import { toPrincipal } from '../src/guard.js';
import { actionHash, canonicalJson } from '../src/hash.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import type { ApprovalAuditEvent, ApprovalStore, Principal } from '../src/types.js';
import { roleData, useRedis } from './helpers.js';

// Two issuers that both have a user "alice": two different people. Approvals are bound to (iss, sub).
const A = 'https://idp-a.example.com/';
const B = 'https://idp-b.example.com/';
const PATH = 'amas/tool_access/decision';
const input = { agent_role: 'security_auditor', tool_name: 'run_pentest', input: { target: 'staging' } };
const otherInput = (n: number) => ({ ...input, input: { target: `host-${n}` } });
const requirement = { approvers: ['approvals:security'], ttlSeconds: 900 };

const aliceA: Principal = { sub: 'alice', iss: A, scopes: ['agents:invoke'] };
const aliceB: Principal = { sub: 'alice', iss: B, scopes: ['agents:invoke'] };
const aliceNoIss: Principal = { sub: 'alice', scopes: ['agents:invoke'] };
const approver: Principal = { sub: 'bob', iss: A, scopes: ['approvals:security'] };
const withScope = (p: Principal): Principal => ({ ...p, scopes: ['approvals:security'] });

const code = (c: OpaErrorCode) => (err: unknown) => isOpaError(err) && err.code === c;

const redis = useRedis('iss');
const newRedis = () => redis.client();
const newPrefix = redis.prefix;

const stores: [string, (now: () => number) => ApprovalStore][] = [
  ['memory store', (now) => createMemoryApprovalStore({ now })],
  ['redis store', () => createRedisApprovalStore({ redis: newRedis(), prefix: newPrefix() })],
];

describe.each(stores)('issuer-qualified principals with the %s', (_name, makeStore) => {
  const setup = (options: { maxPendingPerPrincipal?: number } = {}) => {
    const clock = { t: 1_700_000_000_000 };
    const events: ApprovalAuditEvent[] = [];
    const approvals = createApprovals({
      store: makeStore(() => clock.t),
      now: () => clock.t,
      onAudit: (e) => events.push(e),
      ...options,
    });
    return { clock, events, approvals };
  };
  const approved = async (approvals: ReturnType<typeof setup>['approvals'], principal: Principal) => {
    const rec = await approvals.request({ path: PATH, input, principal, approval: requirement });
    await approvals.approve(rec.id, approver, 'ok');
    return rec;
  };

  it('the record, its view and its audit keep the issuer of the requester and of the approver', async () => {
    const { approvals, events } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    expect(rec.principal).toEqual({ sub: 'alice', iss: A });
    const decided = await approvals.approve(rec.id, approver, 'CHG-1');
    expect(decided).toMatchObject({ decidedBy: 'bob', decidedByIss: A });
    const used = await approvals.consume(rec.id, { path: PATH, input, principal: aliceA });
    expect(used.audit.map((e) => [e.action, e.by, e.iss])).toEqual([
      ['requested', 'alice', A],
      ['approved', 'bob', A],
      ['used', 'alice', A],
    ]);
    const stored = await approvals.get(rec.id);
    expect(stored?.principal).toEqual({ sub: 'alice', iss: A });
    const view = approvals.view(stored as NonNullable<typeof stored>);
    expect(view.principal).toEqual({ sub: 'alice', iss: A });
    expect(view.decided_by).toBe('bob');
    expect(view.decided_by_iss).toBe(A);
    expect(view.audit.map((e) => e.iss)).toEqual([A, A, A]);
    expect(events.map((e) => [e.action, e.by, e.iss])).toEqual([
      ['requested', 'alice', A],
      ['approved', 'bob', A],
      ['used', 'alice', A],
    ]);
  });

  it('attack: same sub, another issuer cannot use the approval; the requester still can', async () => {
    const { approvals, events } = setup();
    const rec = await approved(approvals, aliceA);
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: aliceB })).rejects.toSatisfy(
      code('approval_mismatch'),
    );
    expect(events.at(-1)).toMatchObject({
      action: 'refused',
      by: 'alice',
      iss: B,
      code: 'approval_mismatch',
    });
    expect((await approvals.get(rec.id))?.status).toBe('approved');
    expect((await approvals.consume(rec.id, { path: PATH, input, principal: aliceA })).status).toBe('used');
  });

  it('attack: same sub without an issuer cannot use an approval of an issuer (no wildcard)', async () => {
    const { approvals } = setup();
    const rec = await approved(approvals, aliceA);
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: aliceNoIss })).rejects.toSatisfy(
      code('approval_mismatch'),
    );
    expect((await approvals.consume(rec.id, { path: PATH, input, principal: aliceA })).status).toBe('used');
  });

  it('attack: same sub with an issuer cannot use an approval made without one (no wildcard)', async () => {
    const { approvals } = setup();
    const rec = await approved(approvals, aliceNoIss);
    for (const principal of [aliceA, aliceB]) {
      await expect(approvals.consume(rec.id, { path: PATH, input, principal })).rejects.toSatisfy(
        code('approval_mismatch'),
      );
    }
    expect((await approvals.consume(rec.id, { path: PATH, input, principal: aliceNoIss })).status).toBe(
      'used',
    );
  });

  it('attack: same sub, another issuer cannot view the request; the requester can', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    expect(approvals.canView(rec, aliceB)).toBe(false);
    expect(approvals.canView(rec, aliceNoIss)).toBe(false);
    expect(approvals.canView(rec, aliceA)).toBe(true);
    expect(approvals.canView(rec, { sub: 'alice', iss: A })).toBe(true);
  });

  it('attack: re-escalating as the same sub of another issuer never hands back the pending request', async () => {
    const { approvals, events } = setup();
    const first = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    const fromB = await approvals.request({ path: PATH, input, principal: aliceB, approval: requirement });
    const noIss = await approvals.request({
      path: PATH,
      input,
      principal: aliceNoIss,
      approval: requirement,
    });
    expect(new Set([first.id, fromB.id, noIss.id]).size).toBe(3);
    expect(fromB.principal).toEqual({ sub: 'alice', iss: B });
    expect(noIss.principal).toEqual({ sub: 'alice' });
    // The same person re-escalating still gets her own request back (idempotent).
    const again = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    expect(again.id).toBe(first.id);
    expect(events.filter((e) => e.action === 'requested')).toHaveLength(3);
  });

  it('attack: same sub, another issuer cannot exhaust the limit of pending requests', async () => {
    const { approvals, events } = setup({ maxPendingPerPrincipal: 2 });
    for (const n of [1, 2]) {
      await approvals.request({ path: PATH, input: otherInput(n), principal: aliceA, approval: requirement });
    }
    await expect(
      approvals.request({ path: PATH, input: otherInput(3), principal: aliceA, approval: requirement }),
    ).rejects.toSatisfy(code('approval_limit'));
    expect(events.at(-1)).toMatchObject({ action: 'refused', by: 'alice', iss: A, code: 'approval_limit' });
    // alice@A at her limit takes nothing from alice@B, nor from alice without issuer.
    for (const principal of [aliceB, aliceNoIss]) {
      for (const n of [1, 2]) {
        const r = await approvals.request({
          path: PATH,
          input: otherInput(n),
          principal,
          approval: requirement,
        });
        expect(r.principal.iss).toBe(principal.iss);
      }
      await expect(
        approvals.request({ path: PATH, input: otherInput(3), principal, approval: requirement }),
      ).rejects.toSatisfy(code('approval_limit'));
    }
  });

  it('attack: the requester cannot approve its own request by holding the scope', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    expect(approvals.canDecide(rec, withScope(aliceA))).toBe(false);
    await expect(approvals.approve(rec.id, withScope(aliceA), 'me')).rejects.toSatisfy(
      code('approval_forbidden'),
    );
    expect((await approvals.get(rec.id))?.status).toBe('pending');
  });

  it('the same sub of another issuer is another person: may approve, and is recorded as such', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    expect(approvals.canDecide(rec, withScope(aliceB))).toBe(true);
    const ok = await approvals.approve(rec.id, withScope(aliceB), 'four eyes');
    expect(ok).toMatchObject({ status: 'approved', decidedBy: 'alice', decidedByIss: B });
    expect(ok.audit.at(-1)).toMatchObject({ action: 'approved', by: 'alice', iss: B });
    // The approver of issuer B still cannot use it: it is alice@A's.
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: aliceB })).rejects.toSatisfy(
      code('approval_mismatch'),
    );
    expect((await approvals.consume(rec.id, { path: PATH, input, principal: aliceA })).status).toBe('used');
  });

  it('the list shows an approver the requests of the same sub of other issuers, never its own', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    expect((await approvals.listPending(withScope(aliceA))).map((r) => r.id)).toEqual([]);
    expect((await approvals.listPending(withScope(aliceB))).map((r) => r.id)).toEqual([rec.id]);
    expect((await approvals.listPending(withScope(aliceNoIss))).map((r) => r.id)).toEqual([rec.id]);
    // Without the scope, the same sub of another issuer lists nothing.
    expect(await approvals.listPending(aliceB)).toEqual([]);
  });

  it('principals without an issuer work as before: request, view, approve, use once', async () => {
    const { approvals } = setup();
    const bob = { sub: 'bob', scopes: ['approvals:security'] };
    const rec = await approvals.request({ path: PATH, input, principal: aliceNoIss, approval: requirement });
    expect(rec.principal).toEqual({ sub: 'alice' });
    expect(approvals.canView(rec, aliceNoIss)).toBe(true);
    expect(approvals.canDecide(rec, withScope(aliceNoIss))).toBe(false);
    const ok = await approvals.approve(rec.id, bob);
    expect(ok.decidedByIss).toBeUndefined();
    const used = await approvals.consume(rec.id, { path: PATH, input, principal: aliceNoIss });
    expect(used.audit.map((e) => [e.action, e.by, 'iss' in e])).toEqual([
      ['requested', 'alice', false],
      ['approved', 'bob', false],
      ['used', 'alice', false],
    ]);
    const view = approvals.view(used);
    expect(view.principal).toEqual({ sub: 'alice' });
    expect('decided_by_iss' in view).toBe(false);
  });

  const hostile: [string, unknown][] = [
    ['a number', 42],
    ['null', null],
    ['an object', { toString: () => A }],
    ['an empty string', ''],
    ['a huge string', 'x'.repeat(2_049)],
  ];

  it.each(hostile)(
    'attack: an iss that is %s is refused with unauthenticated when requesting',
    async (_w, iss) => {
      const { approvals } = setup();
      const principal = { sub: 'alice', iss } as unknown as Principal;
      await expect(
        approvals.request({ path: PATH, input, principal, approval: requirement }),
      ).rejects.toSatisfy(code('unauthenticated'));
      expect(await approvals.listPending(approver)).toEqual([]);
    },
  );

  it.each(hostile)('attack: an iss that is %s cannot use, view, decide or list', async (_w, iss) => {
    const { approvals } = setup();
    const rec = await approved(approvals, aliceNoIss);
    const pending = await approvals.request({
      path: PATH,
      input: otherInput(1),
      principal: aliceNoIss,
      approval: requirement,
    });
    const principal = { sub: 'alice', iss, scopes: ['approvals:security'] } as unknown as Principal;
    await expect(approvals.consume(rec.id, { path: PATH, input, principal })).rejects.toSatisfy(
      code('unauthenticated'),
    );
    expect(approvals.canView(rec, principal)).toBe(false);
    expect(approvals.canDecide(pending, principal)).toBe(false);
    expect(await approvals.listPending(principal)).toEqual([]);
    await expect(approvals.approve(pending.id, principal)).rejects.toSatisfy(code('unauthenticated'));
    // Nothing was burnt or decided.
    expect((await approvals.get(rec.id))?.status).toBe('approved');
    expect((await approvals.get(pending.id))?.status).toBe('pending');
  });

  it('an iss of 2,048 characters is accepted and bound exactly', async () => {
    const { approvals } = setup();
    const long = `https://${'i'.repeat(2_040)}`;
    const principal = { sub: 'alice', iss: long };
    const rec = await approved(approvals, principal);
    expect(rec.principal.iss).toBe(long);
    await expect(
      approvals.consume(rec.id, {
        path: PATH,
        input,
        principal: { sub: 'alice', iss: `${long.slice(0, -1)}j` },
      }),
    ).rejects.toSatisfy(code('approval_mismatch'));
    expect((await approvals.consume(rec.id, { path: PATH, input, principal })).status).toBe('used');
  });
});

describe('the stores bind (iss, sub) themselves', () => {
  it.each(stores)('%s: consume with another issuer, or none, is a mismatch', async (_n, makeStore) => {
    const store = makeStore(Date.now);
    const approvals = createApprovals({ store });
    const rec = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    await approvals.approve(rec.id, approver);
    const hash = actionHash(PATH, canonicalJson(input));
    const at = Date.now();
    expect(await store.consume(rec.id, { actionHash: hash, sub: 'alice', iss: B, at })).toEqual({
      ok: false,
      code: 'approval_mismatch',
    });
    expect(await store.consume(rec.id, { actionHash: hash, sub: 'alice', at })).toEqual({
      ok: false,
      code: 'approval_mismatch',
    });
    expect(await store.consume(rec.id, { actionHash: hash, sub: 'alice', iss: '', at })).toEqual({
      ok: false,
      code: 'approval_mismatch',
    });
    const ok = await store.consume(rec.id, { actionHash: hash, sub: 'alice', iss: A, at });
    expect(ok.ok).toBe(true);
  });

  it('a custom store that ignores the issuer cannot make the workflow allow the wrong person', async () => {
    const inner = createMemoryApprovalStore();
    // A store written for the older interface: binds by sub only.
    const careless: ApprovalStore = {
      create: (r, l) => inner.create(r, l),
      get: (id) => inner.get(id),
      listPending: (at, n) => inner.listPending(at, n),
      decide: (id, c) => inner.decide(id, c),
      consume: async (id, use) => {
        const r = await inner.get(id);
        return inner.consume(id, { ...use, ...(r?.principal.iss ? { iss: r.principal.iss } : {}) });
      },
    };
    const approvals = createApprovals({ store: careless });
    const rec = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    await approvals.approve(rec.id, approver);
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: aliceB })).rejects.toSatisfy(
      code('approval_mismatch'),
    );
  });
});

describe('redis: records written before the issuer existed', () => {
  const sha = (text: string) => createHash('sha256').update(text).digest('base64url');

  // The layout the store wrote before `iss`: no `iss` field, the principal JSON without one, the
  // pending index `pending-by:<sha(sub)>`.
  async function legacyRecord(redis: Redis, prefix: string, status: 'pending' | 'approved') {
    const base = `${prefix}{approvals}:`;
    const id = `legacy-${Math.random().toString(36).slice(2, 12)}`;
    const now = Date.now();
    const hash = actionHash(PATH, canonicalJson(input));
    const immutable = {
      id,
      path: PATH,
      input,
      actionHash: hash,
      principal: { sub: 'alice' },
      approvers: requirement.approvers,
      ttlSeconds: requirement.ttlSeconds,
      createdAt: now,
    };
    const expiresAt = now + 3_600_000;
    await redis.hset(`${base}approval:${id}`, {
      record: JSON.stringify(immutable),
      status,
      expiresAt: String(expiresAt),
      actionHash: hash,
      sub: 'alice',
    });
    await redis.rpush(
      `${base}approval:${id}:audit`,
      JSON.stringify({ at: now, action: 'requested', by: 'alice' }),
    );
    if (status === 'pending') {
      await redis.zadd(`${base}pending`, expiresAt, id);
      await redis.zadd(`${base}pending-by:${sha('alice')}`, expiresAt, id);
    }
    await redis.zadd(`${base}records`, expiresAt + 1_000, id);
    return { id, base };
  }

  it('an approved legacy record is usable by the principal without issuer, and by no issuer’s alice', async () => {
    const redis = newRedis();
    const prefix = newPrefix();
    const { id } = await legacyRecord(redis, prefix, 'approved');
    const approvals = createApprovals({ store: createRedisApprovalStore({ redis, prefix }) });
    expect((await approvals.get(id))?.principal).toEqual({ sub: 'alice' });
    for (const principal of [aliceA, aliceB]) {
      await expect(approvals.consume(id, { path: PATH, input, principal })).rejects.toSatisfy(
        code('approval_mismatch'),
      );
    }
    expect((await approvals.consume(id, { path: PATH, input, principal: aliceNoIss })).status).toBe('used');
  });

  it('a pending legacy record counts against the principal without issuer only, and can be decided', async () => {
    const redis = newRedis();
    const prefix = newPrefix();
    const { id, base } = await legacyRecord(redis, prefix, 'pending');
    const approvals = createApprovals({
      store: createRedisApprovalStore({ redis, prefix }),
      maxPendingPerPrincipal: 1,
    });
    await expect(
      approvals.request({ path: PATH, input: otherInput(1), principal: aliceNoIss, approval: requirement }),
    ).rejects.toSatisfy(code('approval_limit'));
    const fromA = await approvals.request({ path: PATH, input, principal: aliceA, approval: requirement });
    expect(fromA.id).not.toBe(id);
    expect(approvals.canView((await approvals.get(id)) as never, aliceA)).toBe(false);
    const ok = await approvals.approve(id, approver);
    expect(ok.status).toBe('approved');
    expect(await redis.zcard(`${base}pending-by:${sha('alice')}`)).toBe(0);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.some((k) => k.includes('{approvals}:pending-by-iss:'))).toBe(true);
    expect(keys.every((k) => k.startsWith(`${prefix}{approvals}:`))).toBe(true);
  });

  it('two replicas racing for alice@A and alice@B at a limit of 3 each get exactly 3', async () => {
    const prefix = newPrefix();
    const replicas = [0, 1].map(() =>
      createApprovals({
        store: createRedisApprovalStore({ redis: newRedis(), prefix }),
        maxPendingPerPrincipal: 3,
      }),
    );
    const attempts = Array.from({ length: 16 }, (_, n) => {
      const principal = n % 2 === 0 ? aliceA : aliceB;
      return (replicas[n % 4 < 2 ? 0 : 1] as (typeof replicas)[0]).request({
        path: PATH,
        input: otherInput(n),
        principal,
        approval: requirement,
      });
    });
    const results = await Promise.allSettled(attempts);
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.principal.iss] : []));
    expect(won.filter((i) => i === A)).toHaveLength(3);
    expect(won.filter((i) => i === B)).toHaveLength(3);
    expect(
      results.filter((r) => r.status === 'rejected').every((r) => code('approval_limit')(r.reason)),
    ).toBe(true);
  });
});

describe('toPrincipal and the enforcer with issuers', () => {
  it('toPrincipal takes iss from iss or issuer, non-empty strings only', () => {
    expect(toPrincipal({ subject: 'alice', issuer: A, scopes: ['s'] })).toEqual({
      sub: 'alice',
      iss: A,
      scopes: ['s'],
    });
    expect(toPrincipal({ sub: 'alice', iss: B, issuer: A })).toEqual({ sub: 'alice', iss: B, scopes: [] });
    expect(toPrincipal({ sub: 'alice', iss: '', issuer: A })).toEqual({ sub: 'alice', iss: A, scopes: [] });
    expect(toPrincipal({ sub: 'alice', iss: 42, issuer: A })).toEqual({ sub: 'alice', iss: A, scopes: [] });
    for (const issuer of [42, null, '', {}, ['x']]) {
      expect(toPrincipal({ subject: 'alice', issuer })).toEqual({ sub: 'alice', scopes: [] });
    }
    expect(toPrincipal({ issuer: A })).toBeUndefined();
  });

  describe('authorize', () => {
    let opa: OpaTestServer;
    beforeAll(async () => {
      opa = await startOpaTestServer({ data: roleData });
    });
    afterAll(async () => {
      await opa.close();
    });

    const toolAccess = { agentRole: 'security_auditor', toolName: 'run_pentest', input: { target: 'x' } };

    it('binds an escalation to (iss, sub): alice@B cannot use alice@A’s approval, alice@A can', async () => {
      const enforcer = createEnforcer({ url: opa.url, cache: false });
      try {
        const esc = await enforcer.authorize({ toolAccess, principal: aliceA });
        expect(esc.outcome).toBe('escalate');
        const id = esc.outcome === 'escalate' ? esc.approval.id : '';
        await enforcer.approvals.approve(id, approver);
        const stolen = await enforcer.authorize({ toolAccess, principal: aliceB, approvalId: id });
        expect(stolen).toMatchObject({ outcome: 'deny', code: 'approval_mismatch' });
        const own = await enforcer.authorize({ toolAccess, principal: aliceA, approvalId: id });
        expect(own.outcome).toBe('allow');
      } finally {
        enforcer.close();
      }
    });

    it('attack: a huge iss denies with unauthenticated, without creating a request', async () => {
      const enforcer = createEnforcer({ url: opa.url, cache: false });
      try {
        const principal = toPrincipal({ subject: 'alice', issuer: 'h'.repeat(100_000) });
        expect(principal?.iss).toHaveLength(100_000);
        const r = await enforcer.authorize({ toolAccess, ...(principal ? { principal } : {}) });
        expect(r).toMatchObject({ outcome: 'deny', code: 'unauthenticated', reasons: ['principal_invalid'] });
        expect(await enforcer.approvals.listPending(approver)).toEqual([]);
      } finally {
        enforcer.close();
      }
    });
  });
});
