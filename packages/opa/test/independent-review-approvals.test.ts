import express from 'express';
import Koa from 'koa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryApprovalStore } from '../src/approval-store-memory.js';
import { createRedisApprovalStore } from '../src/approval-store-redis.js';
import { type Approvals, createApprovals } from '../src/approvals.js';
import { createEnforcer, type Enforcer } from '../src/enforcer.js';
import { isOpaError, type OpaErrorCode } from '../src/errors.js';
import { approvalRoutes as expressApprovals } from '../src/express.js';
import { approvalRoutes as koaApprovals } from '../src/koa.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import type { ApprovalStore, Principal } from '../src/types.js';
import { call, type Framework, listen, startApp, type TestApp } from './apps.js';
import { roleData, useRedis } from './helpers.js';

// An independent, adversarial review of the approval workflow: binding, lifecycle races, ids,
// and the HTTP routes, on both stores and on Express 4/5 and Koa 2/3.

const PATH = 'amas/tool_access/decision';
const input = { agent_role: 'security_auditor', tool_name: 'run_pentest', input: { target: 'staging' } };
const requester: Principal = { sub: 'agent-42', scopes: ['agents:invoke'] };
const approver: Principal = { sub: 'alice', scopes: ['approvals:security'] };
const requirement = { approvers: ['approvals:security'], ttlSeconds: 60 };

const code = (c: OpaErrorCode) => (err: unknown) => isOpaError(err) && err.code === c;
const codeOf = (r: PromiseSettledResult<unknown>) =>
  r.status === 'rejected' && isOpaError(r.reason) ? r.reason.code : r.status;

const redis = useRedis('rv');
const newRedis = () => redis.client();
const uniquePrefix = redis.prefix;

const stores: [string, (now: () => number) => ApprovalStore][] = [
  ['memory store', (now) => createMemoryApprovalStore({ now })],
  ['redis store', () => createRedisApprovalStore({ redis: newRedis(), prefix: uniquePrefix() })],
];

describe.each(stores)('review: approval binding and lifecycle with the %s', (_name, makeStore) => {
  const setup = () => {
    const clock = { t: 1_700_000_000_000 };
    const approvals = createApprovals({ store: makeStore(() => clock.t), now: () => clock.t });
    const request = (inp: unknown = input, principal: Principal = requester) =>
      approvals.request({ path: PATH, input: inp, principal, approval: requirement });
    const use = (id: string, inp: unknown = input, principal: Principal = requester) =>
      approvals.consume(id, { path: PATH, input: inp, principal });
    return { clock, approvals, request, use };
  };

  it('key order does not matter: the approval is for the same input', async () => {
    const { approvals, request, use } = setup();
    const rec = await request({
      tool_name: 'run_pentest',
      agent_role: 'security_auditor',
      input: { b: 1, a: 2 },
    });
    await approvals.approve(rec.id, approver);
    expect(
      (await use(rec.id, { agent_role: 'security_auditor', input: { a: 2, b: 1 }, tool_name: 'run_pentest' }))
        .status,
    ).toBe('used');
  });

  it('attack: the same text in another unicode normalisation (NFD vs NFC) is another input', async () => {
    const { approvals, request, use } = setup();
    const nfc = { ...input, input: { target: 'caf\u00e9.example' } };
    const nfd = { ...input, input: { target: 'cafe\u0301.example' } };
    const rec = await request(nfc);
    await approvals.approve(rec.id, approver);
    await expect(use(rec.id, nfd)).rejects.toSatisfy(code('approval_mismatch'));
    expect((await use(rec.id, nfc)).status).toBe('used');
  });

  it('1, 1.0 and 1e0 are one JSON number: an approval for port 1 covers a body that says 1.0', async () => {
    const { approvals, request, use } = setup();
    const rec = await request(
      JSON.parse('{"agent_role":"security_auditor","tool_name":"run_pentest","input":{"port":1}}'),
    );
    await approvals.approve(rec.id, approver);
    expect(
      (
        await use(
          rec.id,
          JSON.parse('{"agent_role":"security_auditor","tool_name":"run_pentest","input":{"port":1.0}}'),
        )
      ).status,
    ).toBe('used');
  });

  it('attack: an approval for {n: null} cannot be used for a body that held 1e400 (Infinity)', async () => {
    const { approvals, request, use } = setup();
    const rec = await request({ ...input, input: { n: null } });
    await approvals.approve(rec.id, approver);
    await expect(
      use(
        rec.id,
        JSON.parse('{"agent_role":"security_auditor","tool_name":"run_pentest","input":{"n":1e400}}'),
      ),
    ).rejects.toSatisfy(code('input_invalid'));
    await expect(request({ ...input, input: { n: Number.NaN } })).rejects.toSatisfy(code('input_invalid'));
  });

  it('attack: an extra __proto__ key (prototype-pollution payload) is another input', async () => {
    const { approvals, request, use } = setup();
    const rec = await request();
    await approvals.approve(rec.id, approver);
    const polluted = JSON.parse(
      '{"agent_role":"security_auditor","tool_name":"run_pentest","input":{"target":"staging","__proto__":{"target":"prod"}}}',
    );
    await expect(use(rec.id, polluted)).rejects.toSatisfy(code('approval_mismatch'));
  });

  it('attack: an approver whose scopes are a string (an OAuth "scope" claim) gets no substring match', async () => {
    const { approvals, request } = setup();
    const rec = await request();
    for (const scopes of ['approvals:security-readonly', 'no-approvals:security', 'approvals:security']) {
      const eve = { sub: 'eve', scopes } as unknown as Principal;
      await expect(approvals.approve(rec.id, eve)).rejects.toSatisfy(code('approval_forbidden'));
      expect(await approvals.listPending(eve)).toEqual([]);
      expect(approvals.canView(rec, eve)).toBe(false);
    }
    expect((await approvals.get(rec.id))?.status).toBe('pending');
  });

  it('attack: self-approval through another client of the same subject (other scopes) is refused', async () => {
    const { approvals, request } = setup();
    const rec = await request();
    const sameSubOtherClient = { sub: 'agent-42', scopes: ['approvals:security', 'approvals:admin'] };
    await expect(approvals.approve(rec.id, sameSubOtherClient)).rejects.toSatisfy(code('approval_forbidden'));
    await expect(approvals.deny(rec.id, sameSubOtherClient)).rejects.toSatisfy(code('approval_forbidden'));
    expect(await approvals.listPending(sameSubOtherClient)).toEqual([]);
  });

  it('race: approve and use at once: a use wins only after the approval, and only once', async () => {
    const { approvals, request, use } = setup();
    const rec = await request();
    const results = await Promise.allSettled([
      use(rec.id),
      approvals.approve(rec.id, approver),
      use(rec.id),
      use(rec.id),
    ]);
    expect(results[1]?.status).toBe('fulfilled');
    const uses = [results[0], results[2], results[3]] as PromiseSettledResult<unknown>[];
    expect(uses.filter((r) => r.status === 'fulfilled').length).toBeLessThanOrEqual(1);
    for (const r of uses)
      expect(['fulfilled', 'approval_pending', 'approval_already_used']).toContain(codeOf(r));
    const final = await approvals.get(rec.id);
    const actions = final?.audit.map((e) => e.action) ?? [];
    expect(actions.slice(0, 2)).toEqual(['requested', 'approved']);
    expect(actions.filter((a) => a === 'used').length).toBe(
      uses.filter((r) => r.status === 'fulfilled').length,
    );
  });

  it('race: two approvers, one approves and one denies at once: exactly one decision stands', async () => {
    const { approvals, request } = setup();
    const rec = await request();
    const bob = { sub: 'bob', scopes: ['approvals:security'] };
    const results = await Promise.allSettled([
      approvals.approve(rec.id, approver, 'ok'),
      approvals.deny(rec.id, bob, 'no'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.map(codeOf)).toContain('approval_already_decided');
    const final = await approvals.get(rec.id);
    expect(final?.status).toBe(results[0]?.status === 'fulfilled' ? 'approved' : 'denied');
    expect(final?.audit.filter((e) => e.action === 'approved' || e.action === 'denied')).toHaveLength(1);
  });

  it('race: ten approvers at once: one approval, nine already_decided, one audit entry', async () => {
    const { approvals, request } = setup();
    const rec = await request();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        approvals.approve(rec.id, { sub: `approver-${i}`, scopes: ['approvals:security'] }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => codeOf(r) === 'approval_already_decided')).toHaveLength(9);
    expect((await approvals.get(rec.id))?.audit.filter((e) => e.action === 'approved')).toHaveLength(1);
  });

  it('deny after approve is refused (already decided): an approval cannot be revoked once granted', async () => {
    const { approvals, request, use } = setup();
    const rec = await request();
    await approvals.approve(rec.id, approver);
    await expect(approvals.deny(rec.id, { sub: 'bob', scopes: ['approvals:security'] })).rejects.toSatisfy(
      code('approval_already_decided'),
    );
    expect((await use(rec.id)).status).toBe('used');
  });

  it('use racing expiry: usable 1 ms before the deadline, refused at the deadline', async () => {
    const { approvals, request, use, clock } = setup();
    const other = { ...input, input: { target: 'other' } };
    const a = await request();
    const b = await request(other);
    await approvals.approve(a.id, approver);
    await approvals.approve(b.id, approver);
    const deadline = clock.t + requirement.ttlSeconds * 1000;
    clock.t = deadline - 1;
    expect((await use(a.id)).status).toBe('used');
    clock.t = deadline;
    await expect(use(b.id, other)).rejects.toSatisfy(code('approval_expired'));
  });

  it('decide racing the pending deadline: decidable 1 ms before, refused at it', async () => {
    const { approvals, request, clock } = setup();
    const start = clock.t;
    const a = await request();
    const b = await request({ ...input, input: { target: 'other' } });
    clock.t = start + 3_600_000 - 1;
    expect((await approvals.approve(a.id, approver)).status).toBe('approved');
    clock.t = start + 3_600_000;
    await expect(approvals.approve(b.id, approver)).rejects.toSatisfy(code('approval_expired'));
  });

  it('a stranger presenting an id learns nothing of its state: the same refusal whether pending, approved, denied or used', async () => {
    const { approvals, request, use } = setup();
    const stranger = { sub: 'agent-666', scopes: ['agents:invoke'] };
    const pending = await request();
    const approved = await request();
    await approvals.approve(approved.id, approver);
    const denied = await request();
    await approvals.deny(denied.id, approver);
    const used = await request();
    await approvals.approve(used.id, approver);
    await use(used.id);
    const answers = await Promise.allSettled(
      [pending, approved, denied, used].map((r) => use(r.id, input, stranger)),
    );
    expect(answers.map(codeOf)).toEqual(Array(4).fill('approval_mismatch'));
    expect(
      new Set(answers.map((a) => (a.status === 'rejected' ? (a.reason as Error).message : ''))),
    ).toHaveProperty('size', 1);
    // The stranger's attempts consumed nothing.
    expect((await use(approved.id)).status).toBe('used');
  });

  it('approval ids are random v4 UUIDs: unique and not sequential', async () => {
    const { request } = setup();
    // One request per principal: the same principal asking again for the same action gets its pending one.
    const ids = await Promise.all(
      Array.from({ length: 100 }, (_, i) => request(input, { sub: `agent-${i}` })),
    );
    const set = new Set(ids.map((r) => r.id));
    expect(set.size).toBe(100);
    for (const id of set)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('attack: ids made to break Redis keys or patterns ({, }, :, *, ?, newline, spaces) are just not found', async () => {
    const { approvals, request, use } = setup();
    const real = await request();
    await approvals.approve(real.id, approver);
    for (const id of [
      `${real.id}}`,
      `{${real.id}}`,
      `${real.id}:audit`,
      `${real.id.slice(0, 8)}*`,
      `${real.id.slice(0, 8)}?`,
      `${real.id}\n`,
      `${real.id} `,
      '*'.repeat(36),
      real.id.toUpperCase(),
    ]) {
      expect(await approvals.get(id), JSON.stringify(id)).toBeUndefined();
      await expect(use(id), JSON.stringify(id)).rejects.toSatisfy(code('approval_not_found'));
      await expect(approvals.deny(id, approver), JSON.stringify(id)).rejects.toSatisfy(
        code('approval_not_found'),
      );
    }
    expect((await use(real.id)).status).toBe('used');
  });

  it('listing pending requests is not starved by older requests for other approvers', async () => {
    const { approvals, request, clock } = setup();
    for (let i = 0; i < 120; i++) {
      await approvals.request({
        path: PATH,
        input: { ...input, input: { n: i } },
        principal: { sub: `flooder-${i}` },
        approval: { approvers: ['approvals:admin'], ttlSeconds: 60 },
      });
    }
    clock.t += 1_000;
    const mine = await request();
    expect((await approvals.listPending(approver)).map((r) => r.id)).toEqual([mine.id]);
    expect((await approvals.listPending({ sub: 'root', scopes: ['approvals:admin'] }, 5)).length).toBe(5);
  });
});

describe('review: two replicas on one Redis', () => {
  const replicas = () => {
    const prefix = uniquePrefix();
    const a = createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix }) });
    const b = createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix }) });
    return [a, b] as const;
  };

  it('approve on one replica and deny on the other at the same instant: exactly one stands', async () => {
    const [a, b] = replicas();
    for (let round = 0; round < 10; round++) {
      const rec = await a.request({ path: PATH, input, principal: requester, approval: requirement });
      const results = await Promise.allSettled([
        a.approve(rec.id, approver),
        b.deny(rec.id, { sub: 'bob', scopes: ['approvals:security'] }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const seenByA = await a.get(rec.id);
      const seenByB = await b.get(rec.id);
      expect(seenByA).toEqual(seenByB);
      expect(seenByA?.status).toBe(results[0]?.status === 'fulfilled' ? 'approved' : 'denied');
    }
  });

  it('one use per replica at the same instant, many times over: exactly one wins each time', async () => {
    const [a, b] = replicas();
    for (let round = 0; round < 20; round++) {
      const rec = await a.request({ path: PATH, input, principal: requester, approval: requirement });
      await b.approve(rec.id, approver);
      const results = await Promise.allSettled([
        a.consume(rec.id, { path: PATH, input, principal: requester }),
        b.consume(rec.id, { path: PATH, input, principal: requester }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.map(codeOf)).toContain('approval_already_used');
    }
  });

  it('an approver on another replica sees exactly the bound input, __proto__ keys and all', async () => {
    const [a, b] = replicas();
    const tricky = JSON.parse(
      '{"agent_role":"admin","tool_name":"delete_file","input":{"path":"/tmp/x","__proto__":{"path":"/etc"},"n":-0,"e":[]}}',
    );
    const rec = await a.request({ path: PATH, input: tricky, principal: requester, approval: requirement });
    const seen = await b.get(rec.id);
    expect(JSON.stringify(seen?.input)).toBe(JSON.stringify(rec.input));
    expect(JSON.stringify(b.view(seen as NonNullable<typeof seen>).input)).toContain(
      '"__proto__":{"path":"/etc"}',
    );
    await b.approve(rec.id, approver);
    await expect(
      a.consume(rec.id, {
        path: PATH,
        input: { ...tricky, input: { path: '/tmp/x', n: 0, e: [] } },
        principal: requester,
      }),
    ).rejects.toSatisfy(code('approval_mismatch'));
    expect((await a.consume(rec.id, { path: PATH, input: tricky, principal: requester })).status).toBe(
      'used',
    );
  });

  it('attack: hostile ids never create or touch Redis keys', async () => {
    const redis = newRedis();
    const prefix = uniquePrefix();
    const approvals = createApprovals({ store: createRedisApprovalStore({ redis, prefix }) });
    for (const id of ['x}{y*', 'a:b:c:d:e', '*', '{}', 'id\r\nFLUSHALL', 'abcdefgh}:audit']) {
      await approvals.consume(id, { path: PATH, input, principal: requester }).catch(() => undefined);
      await approvals.approve(id, approver).catch(() => undefined);
    }
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });
});

describe('review: enforcer-level binding', () => {
  let opa: OpaTestServer;
  const escalation = {
    allow: false,
    escalate: true,
    reasons: ['approval_required'],
    approval: { approvers: ['approvals:lab'], ttl_seconds: 60 },
  };
  beforeAll(async () => {
    opa = await startOpaTestServer({
      data: roleData,
      rules: { 'review/esc_a': () => escalation, 'review/esc_b': () => escalation },
    });
  });
  afterAll(() => opa.close());

  it('attack: an approval created on one policy path is refused on another with the same input', async () => {
    const e = createEnforcer({ url: opa.url });
    const same = { action: 'wire', amount: 10 };
    const a = await e.authorize({ path: 'review/esc_a', input: same, principal: requester });
    expect(a.outcome).toBe('escalate');
    if (a.outcome !== 'escalate') return;
    await e.approvals.approve(a.approval.id, { sub: 'lab-lead', scopes: ['approvals:lab'] });
    const other = await e.authorize({
      path: 'review/esc_b',
      input: same,
      principal: requester,
      approvalId: a.approval.id,
    });
    expect(other).toMatchObject({ outcome: 'deny', code: 'approval_mismatch' });
    const right = await e.authorize({
      path: 'review/esc_a',
      input: same,
      principal: requester,
      approvalId: a.approval.id,
    });
    expect(right).toMatchObject({ outcome: 'allow' });
    e.close();
  });

  it('attack: an approval for one tool cannot be used for another tool with the same tool input', async () => {
    const e = createEnforcer({ url: opa.url });
    const principal = { sub: 'agent-42', scopes: ['agents:invoke'] };
    const a = await e.authorize({
      toolAccess: { agentRole: 'admin', toolName: 'delete_file', input: { path: '/tmp/x' } },
      principal,
    });
    if (a.outcome !== 'escalate') throw new Error('expected an escalation');
    await e.approvals.approve(a.approval.id, { sub: 'root', scopes: ['approvals:admin'] });
    const other = await e.authorize({
      toolAccess: { agentRole: 'admin', toolName: 'execute_command', input: { path: '/tmp/x' } },
      principal,
      approvalId: a.approval.id,
    });
    expect(other).toMatchObject({ outcome: 'deny', code: 'approval_mismatch' });
    e.close();
  });

  it('an approval id sent to a call the policy already allows is not consumed', async () => {
    const e = createEnforcer({ url: opa.url });
    const principal = { sub: 'agent-42', scopes: ['agents:invoke'] };
    const esc = { agentRole: 'admin', toolName: 'delete_file', input: { path: '/tmp/y' } };
    const a = await e.authorize({ toolAccess: esc, principal });
    if (a.outcome !== 'escalate') throw new Error('expected an escalation');
    await e.approvals.approve(a.approval.id, { sub: 'root', scopes: ['approvals:admin'] });
    const allowed = await e.authorize({
      toolAccess: { agentRole: 'admin', toolName: 'read_file', input: {} },
      principal,
      approvalId: a.approval.id,
    });
    expect(allowed).toMatchObject({ outcome: 'allow' });
    expect(allowed.outcome === 'allow' && allowed.approval).toBeUndefined();
    expect((await e.approvals.get(a.approval.id))?.status).toBe('approved');
    e.close();
  });

  it('a policy that now denies wins over an approval granted earlier, and the approval is not burnt', async () => {
    const local = await startOpaTestServer({ data: roleData });
    const e = createEnforcer({ url: local.url, cache: false });
    const principal = { sub: 'agent-42', scopes: ['agents:invoke'] };
    const esc = { agentRole: 'security_auditor', toolName: 'run_pentest', input: { target: 'staging' } };
    const a = await e.authorize({ toolAccess: esc, principal });
    if (a.outcome !== 'escalate') throw new Error('expected an escalation');
    await e.approvals.approve(a.approval.id, approver);
    const revoked = structuredClone(roleData) as {
      amas: { roles: Record<string, { tools: Record<string, unknown> }> };
    };
    delete revoked.amas.roles.security_auditor?.tools.run_pentest;
    local.setData(revoked);
    expect(await e.authorize({ toolAccess: esc, principal, approvalId: a.approval.id })).toMatchObject({
      outcome: 'deny',
      code: 'policy_denied',
      reasons: ['tool_not_allowed'],
    });
    expect((await e.approvals.get(a.approval.id))?.status).toBe('approved');
    e.close();
    await local.close();
  });
});

const agent = 'Bearer agent-42|agents:invoke';
const securityApprover = 'Bearer alice|approvals:security';
const scanBody = '{"target":"10.0.0.5","mode":"active"}';
const frameworks: Framework[] = ['express5', 'express4', 'koa3', 'koa2'];

describe.each(frameworks)('review: %s guard and approval routes', (framework) => {
  let opa: OpaTestServer;
  let enforcer: Enforcer;
  let app: TestApp;

  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
    enforcer = createEnforcer({ url: opa.url, timeoutMs: 1_000, breaker: false });
    app = await startApp(framework, enforcer);
  });
  afterAll(async () => {
    await app.close();
    enforcer.close();
    await opa.close();
  });

  const approvedScan = async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    expect(r.status).toBe(202);
    const id = (r.body.approval as { id: string }).id;
    expect((await call(app, 'POST', `/approvals/${id}/approve`, securityApprover, '{}')).status).toBe(200);
    return id;
  };
  const retry = (id: string, body: string, auth = agent, extra: Record<string, string> = {}) =>
    call(app, 'POST', '/tools/security_auditor/run_scan', auth, body, { 'amas-approval-id': id, ...extra });

  it('attack: duplicate JSON keys (the last one wins for the tool) cannot ride on the approval', async () => {
    const id = await approvedScan();
    const r = await retry(id, '{"target":"10.0.0.5","mode":"active","target":"10.0.0.99"}');
    expect(r).toMatchObject({ status: 403, body: { error: 'approval_mismatch' } });
    expect((await retry(id, scanBody)).status).toBe(200);
  });

  it('attack: a __proto__ payload added to the approved body is another input', async () => {
    const id = await approvedScan();
    const r = await retry(id, '{"target":"10.0.0.5","mode":"active","__proto__":{"target":"10.0.0.99"}}');
    expect(r).toMatchObject({ status: 403, body: { error: 'approval_mismatch' } });
  });

  it('the same body with its keys in another order and 1.0 for 1 is the same call', async () => {
    const r = await call(
      app,
      'POST',
      '/tools/security_auditor/run_scan',
      agent,
      '{"target":"10.0.0.5","mode":"active","port":1}',
    );
    const id = (r.body.approval as { id: string }).id;
    await call(app, 'POST', `/approvals/${id}/approve`, securityApprover, '{}');
    const again = await retry(id, '{"port":1.0,"mode":"active","target":"10.0.0.5"}');
    expect(again).toMatchObject({ status: 200, body: { ran: true, approval: id } });
  });

  it('attack: 1e400 in a tool body is a 400, never a decision about null', async () => {
    opa.resetStats();
    const r = await call(
      app,
      'POST',
      '/tools/security_auditor/run_scan',
      agent,
      '{"target":"10.0.0.5","mode":"passive","rate":1e400}',
    );
    expect(r).toMatchObject({ status: 400, body: { error: 'input_invalid' } });
    expect(opa.stats().data).toBe(0);
  });

  it('attack: two amas-approval-id headers are refused, not split and tried one by one', async () => {
    const id = await approvedScan();
    const h = new Headers({ authorization: agent, 'content-type': 'application/json' });
    h.append('amas-approval-id', id);
    h.append('amas-approval-id', id);
    const r = await fetch(`${app.url}/tools/security_auditor/run_scan`, {
      method: 'POST',
      headers: h,
      body: scanBody,
    });
    expect(r.status).toBe(404);
    expect((await retry(id, scanBody)).status).toBe(200);
  });

  it('attack: approving with a scope listed for another tool is refused, and reveals nothing', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    const id = (r.body.approval as { id: string }).id;
    const bob = await call(app, 'POST', `/approvals/${id}/approve`, 'Bearer bob|approvals:admin', '{}');
    const unknown = await call(
      app,
      'POST',
      '/approvals/3b241101-e2bb-4255-8caf-4136c566a962/approve',
      'Bearer bob|approvals:admin',
      '{}',
    );
    expect(bob.status).toBe(404);
    expect(bob.text).toBe(unknown.text);
    const list = await call(app, 'GET', '/approvals', 'Bearer bob|approvals:admin');
    expect(JSON.stringify(list.body)).not.toContain(id);
    expect(JSON.stringify(list.body)).not.toContain('10.0.0.5');
  });

  it('attack: the requester, through a second client with the same sub and the approver scope, cannot approve', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    const id = (r.body.approval as { id: string }).id;
    const self = await call(
      app,
      'POST',
      `/approvals/${id}/approve`,
      'Bearer agent-42|approvals:security',
      '{}',
    );
    expect(self).toMatchObject({ status: 403, body: { error: 'approval_forbidden' } });
  });

  it('a status request for an unknown id and for one the caller may not see answer the same', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    const id = (r.body.approval as { id: string }).id;
    const hidden = await call(app, 'GET', `/approvals/${id}`, 'Bearer agent-7|agents:invoke');
    const unknown = await call(
      app,
      'GET',
      '/approvals/3b241101-e2bb-4255-8caf-4136c566a962',
      'Bearer agent-7|agents:invoke',
    );
    expect([hidden.status, hidden.text]).toEqual([unknown.status, unknown.text]);
  });

  it('attack: an oversized approve body is a 400 and changes nothing', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    const id = (r.body.approval as { id: string }).id;
    const big = await call(
      app,
      'POST',
      `/approvals/${id}/approve`,
      securityApprover,
      JSON.stringify({ reason: 'x'.repeat(64 * 1024) }),
    );
    expect(big.status).toBe(400);
    expect(big.body.error).toBe('input_invalid');
    expect((await enforcer.approvals.get(id))?.status).toBe('pending');
  });

  it('attack: a non-JSON approve body is a 400 and changes nothing', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    const id = (r.body.approval as { id: string }).id;
    const bad = await call(app, 'POST', `/approvals/${id}/approve`, securityApprover, 'reason=yes');
    expect(bad).toMatchObject({ status: 400, body: { error: 'input_invalid' } });
    expect((await enforcer.approvals.get(id))?.status).toBe('pending');
  });

  it('attack: a reason over 1,000 characters is a 400 and changes nothing', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    const id = (r.body.approval as { id: string }).id;
    const long = await call(
      app,
      'POST',
      `/approvals/${id}/approve`,
      securityApprover,
      JSON.stringify({ reason: 'y'.repeat(1_001) }),
    );
    expect(long).toMatchObject({ status: 400, body: { error: 'input_invalid' } });
    expect((await enforcer.approvals.get(id))?.status).toBe('pending');
  });

  it('a reason with CR/LF is kept verbatim as data (JSON-escaped), never as a header or a new audit line', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, scanBody);
    const id = (r.body.approval as { id: string }).id;
    const reason = 'ok\r\nused by root at 00:00\r\nx-injected: 1';
    const ok = await call(
      app,
      'POST',
      `/approvals/${id}/approve`,
      securityApprover,
      JSON.stringify({ reason }),
    );
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-injected')).toBeNull();
    expect(ok.text).toContain('ok\\r\\nused by root');
    const audit = (ok.body.audit as { action: string; reason?: string }[]).map((e) => e.action);
    expect(audit).toEqual(['requested', 'approved']);
    expect((await enforcer.approvals.get(id))?.reason).toBe(reason);
  });
});

describe('review: approval routes with an identity function that fails', () => {
  let approvals: Approvals;
  const apps: { close(): Promise<void> }[] = [];
  beforeAll(() => {
    approvals = createApprovals();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const failing = () => {
    throw new Error('identity backend exploded: secret-xyz');
  };

  it('express: a throwing identity is an error answer without a stack or its message, never a 500 page', async () => {
    const app = express();
    app.use('/approvals', expressApprovals({ approvals, identity: failing }));
    const server = await listen(app.listen(0, '127.0.0.1'));
    apps.push(server);
    const r = await call(server, 'GET', '/approvals');
    expect(r.status).toBeLessThan(500);
    expect(r.text).not.toContain('secret-xyz');
    expect(r.text).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it('koa: a throwing identity is an error answer without a stack or its message, never a 500', async () => {
    const app = new Koa();
    app.silent = true;
    app.use(koaApprovals({ approvals, identity: failing }));
    const server = await listen(app.listen(0, '127.0.0.1'));
    apps.push(server);
    const r = await call(server, 'GET', '/approvals');
    expect(r.status).toBeLessThan(500);
    expect(r.text).not.toContain('secret-xyz');
  });
});

describe('review: approval routes leave other requests alone', () => {
  const apps: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const identity = () => ({ sub: 'alice', scopes: ['approvals:security'] });

  it('express: a POST below the mount point that is not an approval route keeps its body', async () => {
    const app = express();
    app.use('/approvals', expressApprovals({ approvals: createApprovals(), identity }));
    app.post('/approvals/export/all/csv', express.json({ limit: '1mb' }), (req, res) => {
      res.json({ size: JSON.stringify(req.body).length });
    });
    const server = await listen(app.listen(0, '127.0.0.1'));
    apps.push(server);
    const big = JSON.stringify({ a: 'x'.repeat(20 * 1024) });
    const r = await call(server, 'POST', '/approvals/export/all/csv', undefined, big);
    expect(r).toMatchObject({ status: 200, body: { size: big.length } });
  });

  it('koa: a POST below the prefix that is not an approval route keeps its body', async () => {
    const app = new Koa();
    app.use(koaApprovals({ approvals: createApprovals(), identity }));
    app.use(async (ctx) => {
      const { readJsonBody } = await import('../src/read-body.js');
      const body = await readJsonBody(ctx.req);
      ctx.body = { got: body ?? null };
    });
    const server = await listen(app.listen(0, '127.0.0.1'));
    apps.push(server);
    const r = await call(server, 'POST', '/approvals/export/all/csv', undefined, '{"a":1}');
    expect(r).toMatchObject({ status: 200, body: { got: { a: 1 } } });
  });
});
